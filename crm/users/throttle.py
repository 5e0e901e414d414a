"""Sign-in throttling that stops guessing, not work (issue 17 point 3).

Both sign-in steps (the password, the second factor's code) are throttled on the app's Redis, so
every gunicorn worker and every host sees the same counts:

* **per account** (the user name typed, lower-cased; for the code step the account itself): the
  first ``CRM_LOGIN_FREE_FAILURES`` failures cost nothing; after them each further attempt must
  wait ``2**n`` seconds after the previous one (2, 4, 8 … s, at most ``CRM_LOGIN_MAX_DELAY_S``), so
  a guessing loop slows to a crawl while a person who mistyped twice never notices. It is a delay,
  never a lock-out: the wait is bounded, and a browser that already completed a sign-in to the
  account (a signed ``crm_known`` cookie, :func:`remember_device`) has a counter of its own, so an
  attacker hammering an operator's name does not keep that operator out. The check and the
  reservation of the attempt are one Lua script, so parallel requests in several workers cannot
  slip past it together. Failures are forgotten ``CRM_LOGIN_FAILURE_MEMORY_S`` after the last one.
* **per address** (``request.remote_addr``, the client's address behind ``CRM_TRUSTED_PROXIES``):
  at most ``CRM_LOGIN_LIMIT`` *failed* attempts (Flask-Limiter's rate-limit syntax, counted by its
  ``limits`` engine in a moving window on the same Redis). Successful sign-ins are not counted, so
  twelve operators behind one office NAT signing in at shift start all pass.

A refused attempt is answered 429 with ``Retry-After`` and a Russian message saying when to try
again, and logged ``auth.login_throttled``. Repeated failures against one account
(``CRM_LOGIN_ALERT_ACCOUNT``) or from one address (``CRM_LOGIN_ALERT_ADDRESS``) fire the hook
``auth.repeated_failures``; the DPO package raises an alert for it (crm.dpo.alerts).
``CRM_LOGIN_THROTTLE`` switches all of it off (the test suite's default app; never in production).
When Redis cannot be reached the attempt goes ahead unthrottled and a warning is logged: an outage
of the counters must not stop a shift from signing in (the password and the second factor still
have to be right).
"""
from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from flask import current_app, request
from redis.exceptions import RedisError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import parse as parse_limit
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from crm import hooks
from crm.db import db
from crm.jobs import redis_connection
from crm.security import audit

#: cookie of a browser that completed a sign-in (a signed list of the accounts it signed in to)
KNOWN_COOKIE = "crm_known"
KNOWN_MAX_AGE_S = 90 * 86400

# KEYS[1]: the account's hash {n: attempts counted, last: time of the last one}
# ARGV: now, free failures, max delay, memory (s). Returns {allowed 0/1, wait (s, text), n}.
_RESERVE = """
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
local now = tonumber(ARGV[1])
local free = tonumber(ARGV[2])
local delay = 0
if n >= free then delay = math.min(2 ^ (n - free + 1), tonumber(ARGV[3])) end
local wait = last + delay - now
if wait > 0 then return {0, tostring(wait), n} end
redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], 'last', ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return {1, '0', n + 1}
"""


@dataclass(frozen=True)
class Refusal:
    """An attempt refused: ``scope`` ``account`` or ``address``; ``retry_after`` whole seconds."""

    scope: str
    retry_after: int


def enabled() -> bool:
    return bool(current_app.config["CRM_LOGIN_THROTTLE"])


def storage_uri(app) -> str:
    """The app's Redis as a ``limits`` / Flask-Limiter storage URI (``REDIS_URL``, else the embedded
    server's socket)."""
    url = app.config.get("REDIS_URL")
    return url if url else "redis+unix://" + app.config["CRM_REDIS_SOCKET"]


def _window():
    app = current_app._get_current_object()
    engine = app.extensions.get("crm_login_window")
    if engine is None:
        engine = app.extensions["crm_login_window"] = MovingWindowRateLimiter(
            storage_from_string(storage_uri(app), key_prefix=app.config["CRM_QUEUE_PREFIX"] + "crm-login"))
    return engine


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _account_key(account: str) -> str:
    return f"{current_app.config['CRM_QUEUE_PREFIX']}crm:login:account:{_digest(account)}"


def account_for(stage: str, name: str) -> str:
    """The counter name of an account at ``stage`` (``password``: the name typed, lower-cased, with
    ``:known`` for a browser that signed in to it before; ``code``: the user id)."""
    if stage == "code":
        return f"code:{name}"
    name = name.strip().lower()
    return f"password:{name}:known" if name in known_accounts() else f"password:{name}"


#: what a Redis outage raises here (redis-py's errors; sockets of the embedded server)
_DOWN = (RedisError, OSError)


def _unavailable(exc: Exception) -> None:
    current_app.logger.warning("sign-in throttling skipped: Redis unavailable (%s)", type(exc).__name__)


def check(account: str, address: str) -> Refusal | None:
    """Before a password or code is checked: None when the attempt may go ahead (it is then counted
    against the account until :func:`succeeded` says it was right), else the :class:`Refusal`."""
    if not enabled():
        return None
    try:
        return _check(account, address)
    except _DOWN as exc:
        _unavailable(exc)
        return None


def _check(account: str, address: str) -> Refusal | None:
    cfg = current_app.config
    item = parse_limit(cfg["CRM_LOGIN_LIMIT"])
    window = _window()
    if not window.test(item, "address", address):
        reset = window.get_window_stats(item, "address", address).reset_time
        return Refusal("address", max(1, math.ceil(reset - time.time())))
    allowed, wait, _ = redis_connection().eval(
        _RESERVE, 1, _account_key(account), repr(time.time()), int(cfg["CRM_LOGIN_FREE_FAILURES"]),
        int(cfg["CRM_LOGIN_MAX_DELAY_S"]), int(cfg["CRM_LOGIN_FAILURE_MEMORY_S"]))
    if not int(allowed):
        return Refusal("account", max(1, math.ceil(float(wait))))
    return None


def failed(account: str, address: str, label: str) -> None:
    """The attempt :func:`check` let through was wrong: count it against the address too, and fire
    ``auth.repeated_failures`` at every ``CRM_LOGIN_ALERT_*``-th failure (``label``: the user name
    the DPO's alert names). Commits (the alert)."""
    if not enabled():
        return
    cfg = current_app.config
    item = parse_limit(cfg["CRM_LOGIN_LIMIT"])
    try:
        window = _window()
        window.hit(item, "address", address)
        n_account = int(redis_connection().hget(_account_key(account), "n") or 0)
        n_address = item.amount - window.get_window_stats(item, "address", address).remaining
    except _DOWN as exc:
        _unavailable(exc)
        return
    fired = False
    for scope, subject, n, every in (("account", label, n_account, int(cfg["CRM_LOGIN_ALERT_ACCOUNT"])),
                                     ("address", address, n_address, int(cfg["CRM_LOGIN_ALERT_ADDRESS"]))):
        if every > 0 and n >= every and n % every == 0:
            hooks.fire("auth.repeated_failures", scope=scope, subject=subject, failures=n)
            fired = True
    if fired:
        db.session.commit()


def succeeded(*accounts: str) -> None:
    """The password or code was right: the attempt is not counted and the accounts' failures are
    forgotten (only the right secret does this, so an attacker cannot)."""
    if enabled() and accounts:
        try:
            redis_connection().delete(*[_account_key(a) for a in accounts])
        except _DOWN as exc:
            _unavailable(exc)


def refused(refusal: Refusal, *, username: str, user_id: int | None, stage: str) -> None:
    """Log a refused attempt (``auth.login_throttled``) and commit."""
    audit.record("auth.login_throttled", actor=audit.Actor(user_id, username[:80], "none"), outcome="denied",
                 detail=f"stage={stage} scope={refusal.scope} retry_after={refusal.retry_after}")
    db.session.commit()


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="crm.users.throttle known browser")


def known_accounts() -> list[str]:
    """The (lower-cased) user names this browser completed a sign-in to, from its signed cookie."""
    raw = request.cookies.get(KNOWN_COOKIE)
    if not raw:
        return []
    try:
        names = _serializer().loads(raw, max_age=KNOWN_MAX_AGE_S)
    except BadSignature:
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def remember_device(response, username: str):
    """Add ``username`` to the browser's ``crm_known`` cookie (at most 5 names); returns ``response``."""
    names = [username.lower()] + [n for n in known_accounts() if n != username.lower()]
    response.set_cookie(KNOWN_COOKIE, _serializer().dumps(names[:5]), max_age=KNOWN_MAX_AGE_S, httponly=True,
                        samesite="Lax", secure=current_app.config.get("SESSION_COOKIE_SECURE", False),
                        path="/login")
    return response
