"""Staff accounts: creation, Argon2id passwords, sign-in checks (password, then the second factor of
:mod:`crm.users.mfa`), API tokens, and their administration (issue 17 point 4: disable, enable, change
role, reset password and second factor, end sessions, name, expire and revoke tokens). Every change is
logged in the access log; the functions that change something take the ``actor`` (the signed-in
administrator, or None for a console command) and commit. A signed-in actor may not change their own
role, nor touch an account of a :data:`CONSOLE_ONLY_ROLES` role (the DPO's), nor give that role: that
stays with the console."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import g

from crm import hooks
from crm.db import db, utcnow
from crm.i18n import lazy_gettext as _l
from crm.security import audit
from crm.security.permissions import ROLES
from crm.users import mfa, sessions
from crm.users.models import ApiToken, User

_hasher = PasswordHasher()  # Argon2id with argon2-cffi's RFC 9106 low-memory profile
_DUMMY = _hasher.hash("not-a-password")


#: Roles of machine clients: API tokens only, never a sign-in to the pages.
TOKEN_ONLY_ROLES = ("ivr",)


class UserError(ValueError):
    """Invalid user data; the message is Russian, for the UI and the CLI."""


def create_user(username: str, role: str, password: str, full_name: str = "",
                executor_id: int | None = None, actor: User | None = None) -> User:
    """Create a staff account. Raises :class:`UserError` for a bad role, a short password or a taken
    name, for an ``executor_id`` not of a known executor (crm.executors, asked through the
    ``executor.lookup`` hook) or given for a role other than ``executor``. Logged as ``user.create`` by
    ``actor`` (None: a console command). An executor-role account
    without an executor sees no appeal (``crm users create`` requires ``--executor-id`` for it)."""
    if role not in ROLES:
        raise UserError(_l("неизвестная роль %(role)r; допустимы: %(roles)s", role=role, roles=', '.join(ROLES)))
    _check_separation(None, actor, role)
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
                 + (f" executor={executor_id}" if executor_id is not None else ""), actor=_actor(actor))
    db.session.commit()
    return user


def authenticate(username: str, password: str) -> User | None:
    """The active user with this password, or None. Constant work either way. This is the first
    factor only: a success is logged ``auth.password_ok`` and the sign-in is complete only after
    the second factor (:func:`complete_sign_in`, logged ``auth.login``); a failure is logged
    ``auth.login_failed``."""
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
    audit.record("auth.password_ok" if ok else "auth.login_failed", actor=actor, outcome="ok" if ok else "denied")
    db.session.commit()
    return user if ok else None


def complete_sign_in(user: User, method: str) -> None:
    """Log the completed sign-in of ``user`` (``auth.login``); ``method`` is how the second factor
    was given: ``enrol`` (first code at enrolment), ``totp`` or ``recovery``."""
    user.last_login_at = utcnow()
    audit.record("auth.login", actor=audit.Actor(user.id, user.username, user.role), detail=f"mfa={method}")
    db.session.commit()


def pending_sign_in(user_id: int, nonce: str) -> User | None:
    """The user of a sign-in waiting for its second factor (the id and session nonce stored in the
    session after the password step), or None when the account is gone, disabled, a machine
    client's, or its sessions were revoked since (the nonce changed)."""
    user = db.session.get(User, user_id)
    if user is None or not user.active or user.role in TOKEN_ONLY_ROLES:
        return None
    return user if secrets.compare_digest(user.session_nonce, nonce) else None


def enrol_demo_second_factor(user: User) -> str:
    """Enrol a demo account's second factor at once and return its TOTP secret (``crm demo-data``
    prints it with the demo logins); see :func:`crm.users.mfa.enrol_for_demo`."""
    return mfa.enrol_for_demo(user)


def reset_second_factor(user: User, actor: User | audit.Actor | None = None) -> None:
    """Remove ``user``'s second factor and end their sessions; they enrol again at the next sign-in.
    ``actor``: the administrator, or None for ``crm users reset-2fa`` (the console). Raises
    :class:`UserError` for a signed-in actor and an account of a :data:`CONSOLE_ONLY_ROLES` role.
    Logged ``auth.mfa_reset``."""
    if not isinstance(actor, audit.Actor):
        _check_separation(user, actor)  # the DPO's second factor is reset on the console only
    _rotate_nonce(user)
    sessions.end_all(user, "admin")
    mfa.reset(user, actor if isinstance(actor, audit.Actor) else _actor(actor))


def logout(user: User) -> None:
    """End this request's session of ``user`` (crm.users.sessions): its cookie, copied or not, signs
    nobody in afterwards; the user's other sessions go on. The caller then calls ``logout_user``."""
    sessions.end_current("logout")
    audit.record("auth.logout", actor=audit.Actor(user.id, user.username, user.role))
    db.session.commit()


def reauthenticate(user: User, password: str, code: str | None = None) -> bool:
    """Check ``user``'s password again in this session before an export of personal data
    (crm.users.sessions.fresh_required) and, when the user has a second factor, a code of it (a TOTP
    code not used before or a recovery code, :func:`crm.users.mfa.verify`; checked only after the
    right password, so the code step cannot be probed without it). On success the session counts as
    fresh. Logged as ``auth.reauth`` (ok or denied); committed. Returns whether both were right."""
    try:
        ok = _hasher.verify(user.password_hash, password) and user.active
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if ok and user.mfa_enrolled:
        ok = mfa.verify(user, code or "") is not None
    if ok:
        sessions.mark_fresh()
    audit.record("auth.reauth", actor=audit.Actor(user.id, user.username, user.role),
                 outcome="ok" if ok else "denied")
    db.session.commit()
    return ok


def _login_id_user(login_id: str) -> tuple[User | None, str | None]:
    """The user a Flask-Login id ``"<id>:<nonce>"`` names and why it no longer signs in (``None``:
    it does; ``"disabled"``; ``"ended"``: unknown user or a rotated nonce, i.e. every session of the
    user was revoked)."""
    try:
        uid, nonce = login_id.split(":", 1)
        user = db.session.get(User, int(uid))
    except (ValueError, TypeError):
        return None, "ended"
    if user is None:
        return None, "ended"
    if not user.active:
        return user, "disabled"
    return user, None if secrets.compare_digest(user.session_nonce, nonce) else "ended"


def valid_login_id(login_id: str) -> User | None:
    """The active user whose current login id is ``login_id``, else None (the session-independent
    half of :func:`load_user`)."""
    user, revoked = _login_id_user(login_id)
    return user if revoked is None else None


def load_user(login_id: str) -> User | None:
    """Flask-Login loader: ``"<id>:<nonce>"`` (:func:`valid_login_id`) and a live server-side session
    of that user (:func:`crm.users.sessions.check`); a stale nonce means every session of the user
    was revoked."""
    user, revoked = _login_id_user(login_id)
    if user is None:
        g.crm_session_ended = "ended"
        return None
    return user if sessions.check(user, revoked=revoked) else None


#: An API token's name: at most this many characters (the column's width).
TOKEN_NAME_MAX = 100
#: The longest expiry ``issue_token`` accepts, in days (ten years; None means "never").
TOKEN_MAX_DAYS = 3650


def issue_token(user: User, name: str = "", expires_days: int | None = None, actor: User | None = None) -> str:
    """Create a new API token for ``user`` named ``name`` (what it is for: ``"АТС"``), valid for
    ``expires_days`` days (None: until revoked); returns the token (shown once, stored as its
    SHA-256). Logged as ``token.issue`` by ``actor`` (None: a console command). Raises
    :class:`UserError` for a disabled account, a name over :data:`TOKEN_NAME_MAX` characters or an
    expiry outside 1…:data:`TOKEN_MAX_DAYS` days."""
    name = (name or "").strip()
    _check_separation(user, actor)
    if not user.active:
        raise UserError(_l("учётная запись %(username)s отключена: токен не выдаётся", username=user.username))
    if len(name) > TOKEN_NAME_MAX:
        raise UserError(_l("название токена длиннее %(n)s символов", n=TOKEN_NAME_MAX))
    if expires_days is not None and not 1 <= expires_days <= TOKEN_MAX_DAYS:
        raise UserError(_l("срок действия токена — от 1 до %(n)s дней", n=TOKEN_MAX_DAYS))
    token = "crm_" + secrets.token_urlsafe(32)
    expires_at = utcnow() + timedelta(days=expires_days) if expires_days is not None else None
    row = ApiToken(user_id=user.id, token_hash=hashlib.sha256(token.encode()).hexdigest(), name=name,
                   expires_at=expires_at)
    db.session.add(row)
    db.session.flush()
    audit.record("token.issue", actor=_actor(actor), detail=f"user={user.id} token={row.id}"
                 + (f" expires={expires_at.date().isoformat()}" if expires_at else ""))
    db.session.commit()
    return token


def user_for_token(token: str) -> User | None:
    """The active user owning this token, or None when the token is unknown, revoked, past its
    ``expires_at``, or its user is disabled. Notes the use in ``last_used_at``."""
    row = db.session.execute(db.select(ApiToken).where(
        ApiToken.token_hash == hashlib.sha256(token.encode()).hexdigest(), ApiToken.revoked.is_(False))
    ).scalar_one_or_none()
    now = utcnow()
    if row is None or not row.user.active or (row.expires_at is not None and row.expires_at <= now):
        return None
    row.last_used_at = now
    return row.user


def tokens_of(user: User) -> list[ApiToken]:
    """The API tokens of ``user``, newest first (revoked and expired included: the page shows them)."""
    return list(db.session.execute(db.select(ApiToken).where(ApiToken.user_id == user.id)
                                   .order_by(ApiToken.id.desc())).scalars())


def token_expired(token: ApiToken, now: datetime | None = None) -> bool:
    """Whether ``token`` is past its expiry."""
    return token.expires_at is not None and token.expires_at <= (now or utcnow())


def revoke_tokens(user: User, actor: User | None = None) -> int:
    """Revoke every unrevoked API token of ``user``; returns how many. Logged as ``token.revoke``
    (also when there was none, so the log shows the attempt)."""
    rows = list(db.session.execute(db.select(ApiToken).where(ApiToken.user_id == user.id,
                                                             ApiToken.revoked.is_(False))).scalars())
    for row in rows:
        row.revoked = True
    audit.record("token.revoke", actor=_actor(actor), detail=f"user={user.id} tokens={len(rows)}")
    db.session.commit()
    return len(rows)


def revoke_token(token_id: int, actor: User | None = None) -> ApiToken:
    """Revoke the API token ``token_id``; returns it. Revoking a revoked token changes nothing and
    logs nothing (a double click). Raises :class:`UserError` when there is no such token."""
    row = db.session.get(ApiToken, token_id)
    if row is None:
        raise UserError(_l("токена %(id)s нет", id=token_id))
    if not row.revoked:
        row.revoked = True
        audit.record("token.revoke", actor=_actor(actor), detail=f"user={row.user_id} token={row.id}")
        db.session.commit()
    return row


# --- administration: disable, enable, role, password, sessions -------------------------------------

def _actor(actor: User | None) -> audit.Actor:
    """The access-log actor for ``actor`` (None: an administrator's console command)."""
    if actor is None:
        return audit.system_actor("cli")
    return audit.Actor(actor.id, actor.username, actor.role)


#: Roles whose accounts only the console (``crm users …``, run on the server) may create, change,
#: disable, enable, give a password or a token: the DPO audits the administrators, so an
#: administrator on the page must not be able to become one, sign in as one, or silence one.
CONSOLE_ONLY_ROLES = ("dpo",)


def _check_separation(user: User | None, actor: User | None, role: str | None = None) -> None:
    """Raise :class:`UserError` when ``actor`` (a signed-in user; None, the console, may) would change
    an account of a :data:`CONSOLE_ONLY_ROLES` role or give one (``role``)."""
    if actor is None:
        return
    if (user is not None and user.role in CONSOLE_ONLY_ROLES) or role in CONSOLE_ONLY_ROLES:
        raise UserError(_l("учётные записи ответственного за ПДн (dpo) меняются только в консоли сервера: "
                           "crm users …"))


def _other_active_admins(user: User) -> int:
    """How many active administrators there are besides ``user``. Locks every active administrator's
    row (``user``'s included, in id order, so two requests wait for each other instead of
    deadlocking): two administrators disabling or demoting each other at once cannot leave none —
    the second one, once the first commits, counts again and is refused."""
    ids = db.session.execute(db.select(User.id).where(User.role == "admin", User.active.is_(True))
                             .order_by(User.id).with_for_update()).scalars().all()
    return sum(1 for i in ids if i != user.id)


def _rotate_nonce(user: User) -> None:
    user.session_nonce = secrets.token_hex(8)


def end_sessions(user: User, actor: User | None = None, *, commit: bool = True) -> None:
    """End every session and remember-me cookie of ``user`` (its session nonce changes, so every
    login id issued before is stale: :func:`load_user`) and every server-side session row ends
    (crm.users.sessions; reason ``admin`` unless a role change or deactivation in the same flush
    already ended them). Logged as ``user.end_sessions``."""
    _rotate_nonce(user)
    sessions.end_all(user, "admin")
    audit.record("user.end_sessions", actor=_actor(actor), detail=f"user={user.id}")
    if commit:
        db.session.commit()


def disable_user(user: User, actor: User | None = None) -> bool:
    """Disable ``user``: no sign-in, its sessions end, its API tokens are refused (not revoked: enabling
    the account brings them back; :func:`revoke_tokens` ends them for good). Returns False when it
    was already disabled (nothing changes, nothing logged). Raises :class:`UserError` for the actor's
    own account and for the last active administrator."""
    if not user.active:
        return False
    _check_separation(user, actor)
    if actor is not None and actor.id == user.id:
        raise UserError(_l("нельзя отключить собственную учётную запись"))
    if user.role == "admin" and _other_active_admins(user) == 0:
        raise UserError(_l("%(username)s — последний активный администратор: его нельзя отключить",
                           username=user.username))
    user.active = False
    audit.record("user.disable", actor=_actor(actor), detail=f"user={user.id}")
    end_sessions(user, actor, commit=False)
    db.session.commit()
    return True


def enable_user(user: User, actor: User | None = None) -> bool:
    """Enable a disabled ``user``. Returns False when it was already active (nothing logged)."""
    if user.active:
        return False
    _check_separation(user, actor)
    user.active = True
    audit.record("user.enable", actor=_actor(actor), detail=f"user={user.id}")
    db.session.commit()
    return True


def change_role(user: User, role: str, actor: User | None = None, executor_id: int | None = None) -> bool:
    """Give ``user`` the role ``role`` (an executor's account: with ``executor_id``, or the one it
    already has); its sessions end. Returns False when nothing changes. Raises :class:`UserError`
    for an unknown role, for ``executor`` without an executor, and for taking the role away from
    the last active administrator."""
    if role not in ROLES:
        raise UserError(_l("неизвестная роль %(role)r; допустимы: %(roles)s", role=role, roles=', '.join(ROLES)))
    if role == "executor":
        executor_id = executor_id if executor_id is not None else user.executor_id
        if executor_id is None:
            raise UserError(_l("для роли executor укажите исполнителя: --executor-id ID "
                               "(crm: GET /api/v1/executors)"))
        if hooks.ask("executor.lookup", executor_id=executor_id) is None:
            raise UserError(_l("исполнитель %(executor_id)s не найден в справочнике", executor_id=executor_id))
    elif executor_id is not None:
        raise UserError(_l("исполнитель (--executor-id) указывается только для роли executor"))
    if role == user.role and (role != "executor" or executor_id == user.executor_id):
        return False
    _check_separation(user, actor, role)
    if actor is not None and actor.id == user.id:
        raise UserError(_l("нельзя менять роль собственной учётной записи"))
    if user.role == "admin" and role != "admin" and user.active and _other_active_admins(user) == 0:
        raise UserError(_l("%(username)s — последний активный администратор: роль не меняется",
                           username=user.username))
    old = user.role
    user.role, user.executor_id = role, (executor_id if role == "executor" else None)
    audit.record("user.role", actor=_actor(actor), detail=f"user={user.id} role={old}->{role}"
                 + (f" executor={executor_id}" if role == "executor" else ""))
    end_sessions(user, actor, commit=False)
    db.session.commit()
    return True


def reset_password(user: User, actor: User | None = None, password: str | None = None) -> str:
    """Set a new password for ``user`` — ``password``, or a generated temporary one (16 URL-safe
    characters, shown once to the administrator) — and end its sessions. Returns the password.
    Raises :class:`UserError` for a password shorter than 8 characters."""
    _check_separation(user, actor)
    password = password if password is not None else secrets.token_urlsafe(12)
    if len(password) < 8:
        raise UserError(_l("пароль должен быть не короче 8 символов"))
    user.password_hash = _hasher.hash(password)
    audit.record("user.password_reset", actor=_actor(actor), detail=f"user={user.id}")
    end_sessions(user, actor, commit=False)
    db.session.commit()
    return password


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


def active_usernames(*roles: str) -> list[str]:
    """User names of the active users having one of ``roles``, by id, read in a transaction that has
    ended when they are returned: for a caller that goes on to slow work without the database (a
    command posting events to a webhook for minutes). On SQLite an open transaction, reads included,
    holds the write lock (``BEGIN IMMEDIATE``, crm.db), and the web app it talks to would wait for it.
    The caller must have no unsaved changes: the session is committed."""
    names = [u.username for u in active_with_roles(*roles)]
    db.session.commit()
    return names


def list_users(role: str | None = None) -> list[User]:
    q = db.select(User).order_by(User.username)
    if role:
        q = q.where(User.role == role)
    return list(db.session.execute(q).scalars())
