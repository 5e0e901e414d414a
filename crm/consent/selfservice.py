"""The citizen's way into the self-service page, without an account: a signed link or an SMS code.

- **Signed link**: staff send it (SMS) from the consent history page. The token is
  ``itsdangerous.URLSafeTimedSerializer(SECRET_KEY, salt)`` over the id of a
  :class:`~crm.consent.models.SelfServiceGrant` row and a random nonce; the row keeps only an HMAC
  of the nonce (``token_hash``), so the link cannot be rebuilt from the database even with the
  secret key. It expires after ``CRM_SELFSERVICE_LINK_TTL_S``
  (default 72 h) and works once: using it sets ``used_at`` with a conditional UPDATE, so a second
  use — even a concurrent one — is refused. A forged, expired or used token is refused with a
  Russian message; the refusal is in the access log.
- **One-time code**: the citizen types their phone on the page; if a citizen with that number exists
  a 6-digit code is sent by SMS (the page, the session and the messages are the same either way, and
  so is the work done: an unknown number gets a decoy grant, see :func:`request_code`). Only an
  HMAC of the code is kept; it expires after ``CRM_SELFSERVICE_CODE_TTL_S``
  (default 10 min), allows 5 attempts and works once. At most 3 codes per number an hour.
  The SMS is sent by a background job (:func:`deliver_code`), never inside the request, so the
  request takes the same path and time for a known and an unknown number; until the job sends it
  the code waits in Redis encrypted under a data key of its own grant, which the job deletes
  (crypto-shredding) with the Redis key once the SMS is handed to the gateway.

Neither the code nor the link is stored in clear anywhere: the SMS goes to the gateway once, with
the secret, and the outbox keeps the text with the secret masked (:func:`crm.consent.sms.send`).

Either way the result is a *scope*: the citizen ids the session may see (for a code, every
registration with that phone). The session itself lives in the signed Flask session cookie for
``CRM_SELFSERVICE_SESSION_S`` (default 30 min); signing out ends it on the server too
(:func:`end_session`). The code is never logged anywhere.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

import time

from flask import current_app, session
from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import inspect as sa_inspect, update

from crm import jobs
from crm.consent.models import SelfServiceGrant
from crm.db import db, new_id, utcnow
from crm.security import audit, crypto, keystore
from crm.timeutil import local_tz
from crm.consent import sms
from crm.consent.services import DSR_PURPOSE
from crm.citizens import services as citizens

SALT = "crm.consent.selfservice.link"
CITIZEN = audit.Actor(None, "citizen:selfservice", "citizen")
MAX_ATTEMPTS = 5
MAX_CODES_PER_HOUR = 3
#: The job that sends a one-time code (:mod:`crm.consent.jobs`; named, not imported: it imports this module).
DELIVER_JOB = "crm.consent.jobs.deliver_code_job"
#: Where the pending code's ciphertext is sealed (associated data; no such column exists).
_PENDING_PLACE = {"table": "selfservice_grants", "column": "pending_code"}


class SelfServiceError(ValueError):
    """A link or code refused; ``code``: ``forged``, ``expired``, ``used``, ``wrong_code``,
    ``too_many``, ``erased``; Russian message for the citizen."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


def _cfg(key: str) -> int:
    return int(current_app.config[key])


def link_ttl_s() -> int:
    return _cfg("CRM_SELFSERVICE_LINK_TTL_S")


def code_ttl_s() -> int:
    return _cfg("CRM_SELFSERVICE_CODE_TTL_S")


def session_s() -> int:
    return _cfg("CRM_SELFSERVICE_SESSION_S")


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=SALT)


def issue_link(citizen, *, user, base_url: str, send: bool = True) -> tuple[str, SelfServiceGrant]:
    """Make a single-use signed link to the self-service page for ``citizen`` and (``send``) text
    it to the citizen's phone. ``base_url``: scheme and host the citizen can reach
    (``CRM_PUBLIC_URL`` or the request's). Returns ``(url, grant)``. Logs ``selfservice.link``."""
    from flask import url_for


    if citizen.erased_at is not None:
        raise SelfServiceError(_("данные заявителя уничтожены"), "erased")
    now = utcnow()
    grant = SelfServiceGrant(id=new_id(), kind="link", citizen_id=citizen.id, scope=[citizen.id], created_at=now,
                             created_by=getattr(user, "id", None), expires_at=now + timedelta(seconds=link_ttl_s()))
    nonce = secrets.token_urlsafe(16)
    grant.token_hash = _secret_hash(grant.id, f"link:{nonce}")
    db.session.add(grant)
    token = _serializer().dumps({"g": grant.id, "n": nonce})
    url = base_url.rstrip("/") + url_for("selfservice.link", token=token)
    audit.record("selfservice.link", citizen_id=citizen.id, purpose=DSR_PURPOSE, detail=f"grant {grant.id}")
    db.session.commit()
    if send:
        until = (grant.expires_at.astimezone(local_tz())).strftime("%d.%m.%Y %H:%M")
        sms.send(citizen, purpose=DSR_PURPOSE, kind="link",
                 body=f"Горячая линия ЖКХ: управление согласиями на обработку данных — {url} "
                      f"(ссылка одноразовая, действует до {until} МСК).", secret=token)
    return url, grant


def check_link(token: str) -> SelfServiceGrant:
    """The grant behind a link, still usable; raises :class:`SelfServiceError` (``forged``,
    ``expired``, ``used``, ``erased``). Does not use it up."""
    try:
        data = _serializer().loads(token, max_age=link_ttl_s())
    except SignatureExpired:
        raise SelfServiceError(_("Срок действия ссылки истёк. Запросите новую ссылку или код по SMS."), "expired") from None
    except BadSignature:
        raise SelfServiceError(_("Ссылка недействительна. Проверьте, что она скопирована полностью, или войдите "
                                 "по коду из SMS."), "forged") from None
    grant = db.session.get(SelfServiceGrant, data.get("g") if isinstance(data, dict) else None)
    if grant is None or grant.kind != "link":
        raise SelfServiceError(_("Ссылка недействительна."), "forged")
    nonce = data.get("n")
    # grants issued before token_hash existed (migration 0013) have none: their links stay valid until they expire
    if grant.token_hash is not None and not (
            isinstance(nonce, str) and hmac.compare_digest(grant.token_hash, _secret_hash(grant.id, f"link:{nonce}"))):
        raise SelfServiceError(_("Ссылка недействительна."), "forged")
    if grant.used_at is not None:
        raise SelfServiceError(_("Эта ссылка уже была использована. Ссылка одноразовая: запросите новую или войдите "
                                 "по коду из SMS."), "used")
    if grant.expires_at <= utcnow():
        raise SelfServiceError(_("Срок действия ссылки истёк. Запросите новую ссылку или код по SMS."), "expired")
    return grant


def _use(grant: SelfServiceGrant, how: str) -> list[str]:
    """Mark ``grant`` used (only if nobody did first) and return its scope; logs ``selfservice.login``."""

    done = db.session.execute(update(SelfServiceGrant).where(SelfServiceGrant.id == grant.id,
                                                             SelfServiceGrant.used_at.is_(None))
                              .values(used_at=utcnow())).rowcount
    if done != 1:
        db.session.rollback()
        raise SelfServiceError(_("Эта ссылка или код уже использованы."), "used")
    scope = [cid for cid in (grant.scope or [grant.citizen_id])
             if (c := citizens.get(cid)) is not None and c.erased_at is None]
    if not scope:
        db.session.rollback()
        raise SelfServiceError(_("Данные заявителя уничтожены: согласий для управления нет."), "erased")
    for cid in scope:
        audit.record("selfservice.login", citizen_id=cid, purpose=DSR_PURPOSE, detail=f"{how} grant {grant.id}",
                     actor=CITIZEN)
    db.session.commit()
    return scope


def use_link(token: str) -> tuple[list[str], str]:
    """Check and use up a link. Returns ``(scope, grant id)``; raises :class:`SelfServiceError`
    (refusals are logged as ``selfservice.refused``)."""
    try:
        grant = check_link(token)
        return _use(grant, "link"), grant.id
    except SelfServiceError as exc:
        refused(exc)
        raise


def refused(exc: SelfServiceError) -> None:
    """Log a refused link or code (no citizen: a forged token names nobody)."""
    audit.record("selfservice.refused", purpose=audit.REPORT_PURPOSE, outcome="denied", detail=exc.code, actor=CITIZEN)
    db.session.commit()


def _secret_hash(grant_id: str, secret: str) -> str:
    """HMAC-SHA256 (hex) of a grant's secret (a code, ``link:<nonce>``) under the app's secret key."""
    key = current_app.secret_key
    key = key.encode() if isinstance(key, str) else key
    return hmac.new(key, f"{SALT}:{grant_id}:{secret}".encode(), hashlib.sha256).hexdigest()


def _code_hash(grant_id: str, code: str) -> str:
    return _secret_hash(grant_id, code)


def request_code(phone: str) -> str:
    """Have a one-time code sent to ``phone`` if a citizen has it. Returns the id of a grant for
    :func:`verify_code` either way, so the answer does not tell who is registered (issue: no
    enumeration through self-service). Raises :class:`crm.citizens.services.CitizenError` for a
    number that is not a phone number.

    A known and an unknown number (or one over :data:`MAX_CODES_PER_HOUR`) take the same steps: the
    phone look-up with the same key-store read and decryptions (``even``: a decoy decrypted when the
    number is nobody's), the hourly count (the same statement), a random code and its HMAC, a grant row (for nobody, ``citizen_id`` NULL: a *decoy*
    whose code is never sent, so it can never be used), an access-log entry, one commit, then the
    code sealed under a new data key of the grant (AES-GCM, :mod:`crm.security.crypto`), the
    ciphertext put in Redis for ``CRM_SELFSERVICE_CODE_TTL_S`` and one :func:`deliver_code` job
    enqueued. The id is a UUID either way, the code page counts the attempts on the row either way and
    answers the same messages. Nothing is sent inside the request (sending took measurably longer
    than not sending, so the response time told who is registered): the job sends the SMS of a real
    grant and nothing for a decoy. Raises redis errors when Redis is down (the grant row is then
    committed but no code goes out; the citizen asks again)."""

    # the same key-store and crypto work either way (``even``); erased citizens are not found. Their ids
    # are read from the identity map: touching the rows the look-up's commit expired would reload them,
    # a round trip an unknown number does not make
    found = [sa_inspect(c).identity[0] for c in citizens.find_by_phone(phone, purpose=DSR_PURPOSE, even=True)]
    first = found[0] if found else None
    now = utcnow()
    # the same statement either way: an unknown number counts a random id's codes (none), not
    # ``citizen_id IS NULL`` (every decoy of the hour: another statement, and slower as they pile up)
    recent = db.session.execute(db.select(db.func.count()).select_from(SelfServiceGrant).where(
        SelfServiceGrant.kind == "code", SelfServiceGrant.citizen_id == (first or new_id()),
        SelfServiceGrant.created_at >= now - timedelta(hours=1))).scalar_one()
    limited = first is not None and recent >= MAX_CODES_PER_HOUR
    real = first is not None and not limited
    code = f"{secrets.randbelow(10 ** 6):06d}"
    grant = SelfServiceGrant(id=new_id(), kind="code", citizen_id=first if real else None,
                             scope=list(found) if real else [],
                             created_at=now, expires_at=now + timedelta(seconds=code_ttl_s()))
    grant.code_hash = _code_hash(grant.id, code)
    db.session.add(grant)
    if real:
        audit.record("selfservice.code", citizen_id=first, purpose=DSR_PURPOSE, detail=f"grant {grant.id}",
                     actor=CITIZEN)
    else:
        audit.record("selfservice.code", citizen_id=first, purpose=DSR_PURPOSE,
                     outcome="denied", detail=f"{'hourly limit' if limited else 'no citizen'}: decoy {grant.id}",
                     actor=CITIZEN)
    db.session.commit()
    sealed = crypto.encrypt_field(code.encode(), row_id=grant.id, owner_id=grant.id, **_PENDING_PLACE)
    jobs.redis_connection().set(_pending_key(grant.id), sealed, ex=code_ttl_s())
    jobs.enqueue(DELIVER_JOB, grant.id)
    return grant.id


def _pending_key(grant_id: str) -> str:
    """The Redis key holding a grant's code, sealed, until :func:`deliver_code` sends it."""
    return f"{current_app.config['CRM_QUEUE_PREFIX']}selfservice:code:{grant_id}"


def deliver_code(grant_id: str, *, final: bool = False) -> str:
    """Send the code of grant ``grant_id`` (the job enqueued by :func:`request_code`; safe to run
    twice). Reads the sealed code from Redis and decrypts it; for a real grant still unused and
    unexpired, sends the SMS (:func:`crm.consent.sms.send`: outbox row with the code masked,
    gateway, ``sms.send`` in the access log); for a decoy sends nothing. Then deletes the Redis key
    and the grant's data key, so no copy of the code is left (a Redis snapshot taken meanwhile holds
    only a ciphertext whose key is gone).

    Returns ``"sent"``, ``"nothing"`` (a decoy, or a grant used, expired or erased meanwhile) or
    ``"gone"`` (no pending code: sent already or expired). A gateway error is re-raised with the
    sealed code kept, so RQ's Retry (declared on the job) tries again until the code's TTL ends;
    on the ``final`` attempt (no retry left) the sealed code and the grant's data key are deleted
    first, so a code that will never be sent leaves no copy behind either (the citizen asks again)."""
    conn = jobs.redis_connection()
    key = _pending_key(grant_id)
    sealed = conn.get(key)
    if sealed is None:
        _shred_pending(grant_id)
        return "gone"
    code = crypto.decrypt_field(sealed, row_id=grant_id, owner_id=grant_id, **_PENDING_PLACE).decode()
    grant = db.session.get(SelfServiceGrant, grant_id)
    outcome = "nothing"
    if (grant is not None and grant.citizen_id is not None and grant.used_at is None
            and grant.expires_at > utcnow()):
        citizen = citizens.get(grant.citizen_id)
        try:
            sent = sms.send(citizen, purpose=DSR_PURPOSE, kind="code",
                            body=f"Код для управления согласиями: {code}. Действует {code_ttl_s() // 60} мин. "
                                 f"Никому его не сообщайте.", actor=CITIZEN, secret=code)
        except Exception:
            if final:  # never to be sent: no copy of the code may outlive the job
                conn.delete(key)
                _shred_pending(grant_id)
            raise
        if sent is not None:
            outcome = "sent"
    conn.delete(key)
    _shred_pending(grant_id)
    return outcome


def _shred_pending(grant_id: str) -> None:
    keystore.delete_owner(grant_id)
    crypto.forget_cached_key(owner_id=grant_id)


def _ended_key(grant_id: str) -> str:
    """The Redis key marking the self-service session begun with grant ``grant_id`` as signed out."""
    return f"{current_app.config['CRM_QUEUE_PREFIX']}selfservice:ended:{grant_id}"


def end_session(grant_id: str | None) -> None:
    """Sign-out: the session begun with ``grant_id`` ends on the server too, so a copy of its cookie
    (which still holds a valid-looking scope until ``ss_until``) is refused afterwards. A grant is
    used once, so it names one session; the mark lives as long as such a session could
    (``CRM_SELFSERVICE_SESSION_S``)."""
    if grant_id:
        jobs.redis_connection().set(_ended_key(grant_id), b"1", ex=max(1, session_s()))


def session_scope() -> tuple[list[str], str | None]:
    """The citizen ids of this request's self-service session and the grant it began with, or
    ``([], None)`` when there is none, it expired or was signed out (:func:`end_session`; the keys
    are then dropped)."""
    scope, until = session.get("ss_scope"), session.get("ss_until", 0)
    grant_id = session.get("ss_grant")
    if (not scope or until < time.time()
            or (grant_id and jobs.redis_connection().exists(_ended_key(grant_id)))):
        for k in ("ss_scope", "ss_until", "ss_grant"):
            session.pop(k, None)
        return [], None
    return list(scope), session.get("ss_grant")


def signed_in_by_code(grant_id: str | None) -> bool:
    """Whether a self-service session began with grant ``grant_id`` as a one-time SMS code that was
    used (the citizen proved they hold the registered phone just now), not a link sent earlier."""
    grant = db.session.get(SelfServiceGrant, grant_id) if grant_id and not grant_id.startswith("decoy-") else None
    return grant is not None and grant.kind == "code" and grant.used_at is not None


def verify_code(grant_id: str, code: str) -> list[str]:
    """Check a code typed by the citizen; returns the scope. Every attempt counts; after
    :data:`MAX_ATTEMPTS` the code is dead. Raises :class:`SelfServiceError` (logged)."""
    code = "".join(ch for ch in (code or "") if ch.isdigit())
    grant = db.session.get(SelfServiceGrant, grant_id) if grant_id else None
    try:
        if grant is None or grant.kind != "code":
            raise SelfServiceError(_("Неверный код."), "wrong_code")
        if grant.used_at is not None:
            raise SelfServiceError(_("Этот код уже использован. Запросите новый."), "used")
        if grant.expires_at <= utcnow():
            raise SelfServiceError(_("Срок действия кода истёк. Запросите новый."), "expired")
        if grant.attempts >= MAX_ATTEMPTS:
            raise SelfServiceError(_("Слишком много неверных попыток. Запросите новый код."), "too_many")
        grant.attempts += 1
        db.session.commit()
        matches = hmac.compare_digest(grant.code_hash or "", _code_hash(grant.id, code))
        if not matches or grant.citizen_id is None:  # a decoy's code was never sent: it never signs in
            left = MAX_ATTEMPTS - grant.attempts
            raise SelfServiceError(_("Неверный код. Осталось попыток: %(left)s.", left=left) if left else
                                   _("Неверный код. Попытки исчерпаны: запросите новый код."), "wrong_code")
        return _use(grant, "code")
    except SelfServiceError as exc:
        refused(exc)
        raise
