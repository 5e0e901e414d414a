from __future__ import annotations

import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.db import UTCDateTime, db, utcnow
from crm.security.fields import Encrypted


class User(UserMixin, db.Model):
    """A staff member. ``session_nonce`` is part of the login id: changing it revokes every
    session and remember-me cookie of the user (flask-login#600)."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20), index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: the TOTP secret (base32), encrypted under the account's own data key (``mfa_key_owner``); set
    #: when enrolment starts, confirmed by ``totp_enrolled_at`` (crm.users.mfa)
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_secret = Encrypted("totp_secret_enc")
    #: the key-store owner id of the data key that encrypts ``totp_secret`` (declared to
    #: crm.security.registry as a key owner, so ``crm keys gc`` keeps the key)
    mfa_key_owner: Mapped[str | None] = mapped_column(String(36), unique=True)
    totp_enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: the last TOTP time step (Unix time // 30) accepted: a code of this step or an earlier one is a replay
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    session_nonce: Mapped[str] = mapped_column(String(32), default=lambda: secrets.token_hex(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: for the role ``executor``: the service (crm.executors) whose appeals the account sees
    executor_id: Mapped[int | None] = mapped_column(ForeignKey("executors.id"), index=True)
    #: the last successful sign-in to the pages (UTC); None: never, or before migration 0037
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def get_id(self) -> str:
        return f"{self.id}:{self.session_nonce}"

    @property
    def crypto_owner_id(self) -> str | None:
        return self.mfa_key_owner

    @property
    def mfa_enrolled(self) -> bool:
        """Whether the second factor is set up (an enrolment confirmed with a code)."""
        return self.totp_enrolled_at is not None

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def display_name(self) -> str:
        return self.full_name or self.username


class ApiToken(db.Model):
    """A bearer token; only its SHA-256 is stored. ``name`` says what it is for (``"АТС"``, ``"IVR"``);
    past ``expires_at`` (UTC; None: never) it is refused like a revoked one."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(100), default="", server_default="")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user: Mapped[User] = relationship()


class UserSession(db.Model):
    """A staff member's sign-in (crm.users.sessions): the browser's session cookie carries a random
    session id, this row only its SHA-256 (``id``), so a read of the table signs nobody in.
    ``ended_at`` set means ended (sign-out, an admin, a role change or deactivation, idle or
    absolute expiry; ``end_reason`` says which); rows are kept for the sessions page and audit."""

    __tablename__ = "user_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: when the user last typed their password in this session (sign-in or re-authentication)
    fresh_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(20))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))


class RecoveryCode(db.Model):
    """A one-time recovery code of the second factor: only its HMAC-SHA256 is stored (crm.users.mfa);
    ``used_at`` is set when it is spent."""

    __tablename__ = "user_recovery_codes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
