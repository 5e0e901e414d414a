"""The staff second factor: TOTP (RFC 6238, pyotp) with one-time recovery codes.

* **Enrolment**: :func:`enrolment_secret` makes a random 160-bit base32 secret and stores it
  encrypted (``users.totp_secret``, an :class:`crm.security.fields.Encrypted` column under a data key
  of the account's own); the page shows it as a QR code (:func:`qr_data_uri`, an inline SVG made by
  segno — nothing is fetched) and as text. :func:`confirm_enrolment` checks a code made from it,
  marks the account enrolled and returns :data:`RECOVERY_CODES` fresh recovery codes, shown once.
* **Sign-in**: :func:`verify` takes a 6-digit TOTP code (the current 30-s step or one either side,
  for clock drift) or a recovery code.
* **No replay**: an accepted TOTP code's time step is written to ``users.totp_last_step`` by one
  conditional ``UPDATE … WHERE totp_last_step < step``; a code of that step or an earlier one is
  refused, also when two workers receive the same code at once. A recovery code is spent the same
  way (``UPDATE … WHERE used_at IS NULL``).
* **Recovery codes** are stored as HMAC-SHA256 under a key derived from the app's ``SECRET_KEY``
  (changing ``SECRET_KEY`` voids them: the staff member's admin resets the second factor).
* **Reset** (:func:`reset`): an admin (or ``crm users reset-2fa``) removes the secret and the codes
  and (crm.users.services) ends the account's sessions; the next sign-in enrols again. Logged
  ``auth.mfa_reset``.

Services commit; the views only call them.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid

import pyotp
import segno
import sqlalchemy as sa
from flask import current_app

from crm.db import db, utcnow
from crm.security import audit
from crm.users.models import RecoveryCode, User

#: How many recovery codes an enrolment gives.
RECOVERY_CODES = 10
#: Alphabet of recovery codes: lower-case letters and digits without the look-alikes 0 o 1 l i.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
STEP_S = 30  # RFC 6238 time step, seconds
DIGITS = 6


def _actor(user: User) -> audit.Actor:
    return audit.Actor(user.id, user.username, user.role)


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S)


def enrolment_secret(user: User) -> str:
    """The secret being enrolled for ``user`` (base32): made and stored encrypted on first call,
    the same one until enrolment is confirmed or reset. Raises ``ValueError`` for an enrolled user."""
    if user.mfa_enrolled:
        raise ValueError("the second factor is already set up; reset it first")
    secret = user.totp_secret
    if secret is None:
        if user.mfa_key_owner is None:
            user.mfa_key_owner = str(uuid.uuid4())
        secret = pyotp.random_base32()  # 32 base32 characters = 160 bits (RFC 4226 recommends 160)
        user.totp_secret = secret
        user.totp_last_step = None
        db.session.commit()
    return secret


def provisioning_uri(user: User, secret: str) -> str:
    """The ``otpauth://totp/...`` URI authenticator apps read from the QR code; the issuer is
    ``CRM_MFA_ISSUER``."""
    return _totp(secret).provisioning_uri(name=user.username, issuer_name=current_app.config["CRM_MFA_ISSUER"])


def qr_data_uri(text: str) -> str:
    """``text`` as a QR code in an SVG ``data:`` URI (segno, error correction M), for an ``<img>``."""
    return segno.make(text, error="m", micro=False).svg_data_uri(scale=5, border=2)


def _matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step (Unix time // 30) among now-1, now, now+1 whose code is ``code``, or None."""
    code = "".join(code.split())
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = _totp(secret)
    current = int(now) // STEP_S
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _consume_step(user: User, step: int) -> bool:
    """Record ``step`` as the last accepted one unless it (or a later one) was used: one atomic
    UPDATE, so two requests with the same code cannot both pass."""
    table = User.__table__
    result = db.session.execute(sa.update(table).where(
        table.c.id == user.id, sa.or_(table.c.totp_last_step.is_(None), table.c.totp_last_step < step))
        .values(totp_last_step=step))
    if result.rowcount != 1:
        return False
    user.totp_last_step = step
    return True


def _code_key() -> bytes:
    return hmac.new(current_app.config["SECRET_KEY"].encode() if isinstance(current_app.config["SECRET_KEY"], str)
                    else current_app.config["SECRET_KEY"], b"crm.users.mfa recovery codes", hashlib.sha256).digest()


def _normalise_recovery(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def _recovery_hash(user_id: int, code: str) -> str:
    return hmac.new(_code_key(), f"{user_id}:{_normalise_recovery(code)}".encode(), hashlib.sha256).hexdigest()


def _new_recovery_codes(user: User) -> list[str]:
    """Replace ``user``'s recovery codes with :data:`RECOVERY_CODES` new ones (``xxxxx-xxxxx``, 50 bits each)."""
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
        db.session.add(RecoveryCode(user_id=user.id, code_hash=_recovery_hash(user.id, raw)))
    return codes


def confirm_enrolment(user: User, code: str, now: float | None = None) -> list[str] | None:
    """Finish enrolment with a code from the authenticator: on success the account is enrolled, the
    code's step is spent, ``auth.mfa_enrol`` is logged and the new recovery codes are returned (plain,
    shown once; only their HMACs are kept). None for a wrong code (logged ``auth.mfa_failed``)."""
    secret = user.totp_secret
    step = _matching_step(secret, code, time.time() if now is None else now) if secret else None
    if step is None or not _consume_step(user, step):
        audit.record("auth.mfa_failed", actor=_actor(user), outcome="denied", detail="stage=enrol")
        db.session.commit()
        return None
    user.totp_enrolled_at = utcnow()
    codes = _new_recovery_codes(user)
    audit.record("auth.mfa_enrol", actor=_actor(user), detail=f"user={user.id} recovery_codes={len(codes)}")
    db.session.commit()
    return codes


def verify(user: User, code: str, now: float | None = None) -> str | None:
    """Check the second factor of an enrolled ``user``: a TOTP code not used before (``"totp"``) or an
    unspent recovery code (``"recovery"``, spent now, logged ``auth.recovery_code_used`` with how
    many remain). None when neither (logged ``auth.mfa_failed``; a replayed code's detail says so)."""
    if not user.mfa_enrolled or user.totp_secret is None:
        return None
    code = (code or "").strip()[:64]
    step = _matching_step(user.totp_secret, code, time.time() if now is None else now)
    if step is not None:
        if _consume_step(user, step):
            db.session.commit()
            return "totp"
        audit.record("auth.mfa_failed", actor=_actor(user), outcome="denied", detail="stage=code replay")
        db.session.commit()
        return None
    if len(_normalise_recovery(code)) == 10:
        result = db.session.execute(sa.update(RecoveryCode).where(
            RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _recovery_hash(user.id, code),
            RecoveryCode.used_at.is_(None)).values(used_at=utcnow()))
        if result.rowcount == 1:
            audit.record("auth.recovery_code_used", actor=_actor(user),
                         detail=f"user={user.id} remaining={recovery_codes_left(user)}")
            db.session.commit()
            return "recovery"
    audit.record("auth.mfa_failed", actor=_actor(user), outcome="denied", detail="stage=code")
    db.session.commit()
    return None


def recovery_codes_left(user: User) -> int:
    """How many unspent recovery codes ``user`` has."""
    return db.session.execute(sa.select(sa.func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))).scalar_one()


def reset(user: User, actor: audit.Actor) -> None:
    """Remove ``user``'s second factor (secret, last step, recovery codes); the next sign-in enrols
    again. Logged ``auth.mfa_reset`` as ``actor``; commits (with whatever the caller did before, e.g.
    ending the user's sessions: crm.users.services.reset_second_factor)."""
    user.totp_secret = None
    user.totp_enrolled_at = None
    user.totp_last_step = None
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    audit.record("auth.mfa_reset", actor=actor, detail=f"user={user.id}")
    db.session.commit()


def enrol_for_demo(user: User) -> str:
    """Enrol ``user`` without a code and return the secret, for the demo accounts of ``crm demo-data``
    only (their secrets are printed with the demo logins so the demo can be signed in to at once).
    No recovery codes. Logged ``auth.mfa_enrol`` with ``demo``."""
    secret = enrolment_secret(user)
    user.totp_enrolled_at = utcnow()
    audit.record("auth.mfa_enrol", actor=audit.system_actor("demo-data"), detail=f"user={user.id} demo")
    db.session.commit()
    return secret
