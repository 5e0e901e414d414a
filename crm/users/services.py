"""Staff accounts: creation, Argon2id passwords, sign-in checks, API tokens."""
from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from crm import hooks
from crm.db import db, utcnow
from crm.i18n import lazy_gettext as _l
from crm.security import audit
from crm.security.permissions import ROLES
from crm.users.models import ApiToken, User

_hasher = PasswordHasher()  # Argon2id with argon2-cffi's RFC 9106 low-memory profile
_DUMMY = _hasher.hash("not-a-password")


#: Roles of machine clients: API tokens only, never a sign-in to the pages.
TOKEN_ONLY_ROLES = ("ivr",)


class UserError(ValueError):
    """Invalid user data; the message is Russian, for the UI and the CLI."""


def create_user(username: str, role: str, password: str, full_name: str = "",
                executor_id: int | None = None) -> User:
    """Create a staff account. Raises :class:`UserError` for a bad role, a short password or a taken
    name, for an ``executor_id`` not of a known executor (crm.executors, asked through the
    ``executor.lookup`` hook) or given for a role other than ``executor``. An executor-role account
    without an executor sees no appeal (``crm users create`` requires ``--executor-id`` for it)."""
    if role not in ROLES:
        raise UserError(_l("неизвестная роль %(role)r; допустимы: %(roles)s", role=role, roles=', '.join(ROLES)))
    if executor_id is not None:
        if role != "executor":
            raise UserError(_l("исполнитель (--executor-id) указывается только для роли executor"))
        if hooks.ask("executor.lookup", executor_id=executor_id) is None:
            raise UserError(_l("исполнитель %(executor_id)s не найден в справочнике", executor_id=executor_id))
    if len(password) < 8:
        raise UserError(_l("пароль должен быть не короче 8 символов"))
    if db.session.execute(db.select(User).where(User.username == username)).scalar_one_or_none():
        raise UserError(_l("пользователь %(username)s уже существует", username=username))
    user = User(username=username, role=role, password_hash=_hasher.hash(password), full_name=full_name,
                executor_id=executor_id)
    db.session.add(user)
    db.session.flush()
    audit.record("user.create", detail=f"user={user.id} role={role}"
                 + (f" executor={executor_id}" if executor_id is not None else ""), actor=audit.system_actor("cli"))
    db.session.commit()
    return user


def authenticate(username: str, password: str) -> User | None:
    """The active user with this password, or None. Logs success and failure. Constant work either way."""
    user = db.session.execute(db.select(User).where(User.username == username)).scalar_one_or_none()
    ok = False
    try:
        ok = _hasher.verify(user.password_hash if user else _DUMMY, password) and user is not None and user.active
        ok = ok and user.role not in TOKEN_ONLY_ROLES  # a machine client (the IVR) never signs in to the pages
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if ok and _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    actor = audit.Actor(user.id, user.username, user.role) if user else audit.Actor(None, username[:80], "none")
    audit.record("auth.login" if ok else "auth.login_failed", actor=actor, outcome="ok" if ok else "denied")
    db.session.commit()
    return user if ok else None


def logout(user: User) -> None:
    """Revoke every session and remember-me cookie of ``user`` by rotating its session nonce."""
    user.session_nonce = secrets.token_hex(8)
    audit.record("auth.logout", actor=audit.Actor(user.id, user.username, user.role))
    db.session.commit()


def load_user(login_id: str) -> User | None:
    """Flask-Login loader: ``"<id>:<nonce>"``; a stale nonce means the session was revoked."""
    try:
        uid, nonce = login_id.split(":", 1)
        user = db.session.get(User, int(uid))
    except (ValueError, TypeError):
        return None
    if user is None or not user.active or not secrets.compare_digest(user.session_nonce, nonce):
        return None
    return user


def issue_token(user: User) -> str:
    """Create a new API token for ``user``; returns the token (shown once, stored hashed)."""
    token = "crm_" + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user_id=user.id, token_hash=hashlib.sha256(token.encode()).hexdigest()))
    audit.record("token.issue", actor=audit.system_actor("cli"), detail=f"user={user.id}")
    db.session.commit()
    return token


def user_for_token(token: str) -> User | None:
    """The active user owning an unrevoked token, or None."""
    row = db.session.execute(db.select(ApiToken).where(
        ApiToken.token_hash == hashlib.sha256(token.encode()).hexdigest(), ApiToken.revoked.is_(False))
    ).scalar_one_or_none()
    if row is None or not row.user.active:
        return None
    row.last_used_at = utcnow()
    return row.user


def get_by_username(username: str) -> User | None:
    return db.session.execute(db.select(User).where(User.username == username)).scalar_one_or_none()


def get(user_id: int | None) -> User | None:
    """The user with this id, or None (also for ``None``)."""
    return db.session.get(User, user_id) if user_id else None


def by_id() -> dict[int, User]:
    """Every user, keyed by id (for pages that name the staff behind rows)."""
    return {u.id: u for u in db.session.execute(db.select(User)).scalars()}


def by_ids(ids) -> list[User]:
    """The users with these ids that exist (any order)."""
    ids = list(ids)
    return list(db.session.execute(db.select(User).where(User.id.in_(ids))).scalars()) if ids else []


def active_with_roles(*roles: str) -> list[User]:
    """Active users having one of ``roles``, by id."""
    return list(db.session.execute(db.select(User).where(User.role.in_(roles), User.active.is_(True))
                                   .order_by(User.id)).scalars())


def list_users(role: str | None = None) -> list[User]:
    q = db.select(User).order_by(User.username)
    if role:
        q = q.where(User.role == role)
    return list(db.session.execute(q).scalars())
