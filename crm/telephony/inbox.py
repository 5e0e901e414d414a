"""The PBX's events on their way in: accepted into Redis within the request, built into call records by
a worker (issue 16: the webhook sustains ≥ 500 events/s with p99 ≤ 50 ms on two gunicorn workers).

Building a call record (:func:`crm.telephony.services.ingest`: the citizen's look-up through the phone
blind index, the event row, the record locked and folded, the callback worklist, the screen pop) costs
about 15 ms of CPU and 19 SQL statements; done inside the request, it capped two sync workers at about
125 events/s on two cores (bench/telephony.py, stop 24). So the webhook only checks what makes an event
acceptable and hands it on:

1. :class:`FastWebhook`, a WSGI middleware in front of the Flask app, takes ``POST
   /api/v1/telephony/events`` with a JSON body: the signature (HMAC-SHA256 of the raw body under the
   source's secret), the fields (the same limits as ``TelephonyEventSchema``: types, lengths, no NUL,
   ``type`` one of newCall/answer/hangup, ``callId``, ``at`` within ``CRM_TELEPHONY_WINDOW_S``). An
   event that passes is pushed (:func:`push`) and answered 202 without Flask's request cycle (sessions,
   CSRF, the policy check: none applies to a signed machine request). Anything else — a bad signature,
   an invalid field, a recording, multipart, Redis down — goes on unchanged to the Flask view, which
   answers it exactly as before (401, 400 with the field named, 503 …), so the errors have one source.
2. :func:`push` is one Redis round trip (a Lua script): the event id is remembered for
   ``CRM_TELEPHONY_REPLAY_TTL_S`` (a replay is answered ``duplicate: true``), the event — sealed with
   :func:`crm.security.crypto.seal_transient`, as it holds the caller's number — is appended to the
   inbox list, and when no drain is scheduled one is (``{prefix}crm:telephony:drain``, a lease).
3. :func:`drain` (the job :func:`crm.telephony.jobs.drain_inbox`, on the ``telephony`` queue, which
   ``crm worker`` serves first) moves events one at a time to a processing list (``LMOVE``), builds
   the record, and removes them: a worker killed mid-event leaves the event in the processing list,
   and the next drain puts it back (:func:`ingest` is idempotent on the event id, so an event built
   twice changes nothing). An event that cannot be built (its KEK retired, a field the services
   refuse) is moved to the failed list and logged by id; a database or Redis error puts it back and
   the job fails, so RQ retries it. The periodic ``telephony-inbox`` job (:func:`kick`) schedules a
   drain for events left behind by a crash.

Events of one call may be built in any order (the record is a fold of all its events), so the inbox
needs no per-call ordering. The database stays the judge of duplicates for good: an event id replayed
after the Redis memory expired is queued and then ignored by :func:`ingest`.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import time

import redis
from flask import Flask, current_app

from crm import jobs
from crm.db import db
from crm.security import audit, crypto
from crm.security.headers import SECURITY_HEADERS
from crm.telephony import services

log = logging.getLogger(__name__)

PATH = "/api/v1/telephony/events"
#: The sealed events' purpose (:func:`crm.security.crypto.seal_transient`).
PURPOSE = "telephony-inbox"
#: Bytes of a JSON event the fast path reads (the Flask view's limit too: TELEPHONY_MAX_BODY).
MAX_BODY = 64 * 1024
#: Seconds a drain's lease lasts without progress (renewed at every event).
LEASE_S = 60
#: The event types built in the background; ``recording`` (a file or a fetch) stays with the view.
QUEUED_TYPES = ("newCall", "answer", "hangup")

# KEYS: dedupe key, inbox, drain lease, pushed counter; ARGV: dedupe TTL (s), sealed event, lease (s).
# The entry is "<seq>|<sealed event>", seq from the pushed counter (the read-your-writes watermark).
# Returns 0: a known event id (nothing queued); 1: queued, a drain is scheduled; 2: queued, schedule one.
_PUSH = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then return 0 end
local seq = redis.call('INCR', KEYS[4])
redis.call('RPUSH', KEYS[2], seq .. '|' .. ARGV[2])
if redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[3]) then return 2 end
return 1
"""

# KEYS: built watermark; ARGV: seq. The watermark only moves forward.
_BUILT = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""

# --- Redis keys ---------------------------------------------------------------------------------------


def _prefix(app=None) -> str:
    return (app or current_app).config["CRM_QUEUE_PREFIX"]


def event_key(event_id: str, app=None) -> str:
    """The key remembering ``event_id`` for ``CRM_TELEPHONY_REPLAY_TTL_S`` (the view's key too)."""
    return f"{_prefix(app)}crm:telephony:event:{event_id}"


def inbox_key(app=None) -> str:
    return f"{_prefix(app)}crm:telephony:inbox"


def processing_key(app=None) -> str:
    return f"{_prefix(app)}crm:telephony:inbox:processing"


def failed_key(app=None) -> str:
    return f"{_prefix(app)}crm:telephony:inbox:failed"


def lease_key(app=None) -> str:
    return f"{_prefix(app)}crm:telephony:drain"


def pushed_key(app=None) -> str:
    """The count of events ever queued: each entry's sequence number."""
    return f"{_prefix(app)}crm:telephony:inbox:pushed"


def built_key(app=None) -> str:
    """The highest sequence number built (or set aside as failed): the read-your-writes watermark."""
    return f"{_prefix(app)}crm:telephony:inbox:built"


# --- accepting ----------------------------------------------------------------------------------------

def push(event: dict, source: str | None) -> bool:
    """Queue the validated ``event`` (the webhook's JSON object, ``from`` under ``from``) of ``source``
    for :func:`drain`. Returns False for an event id already remembered (nothing queued), True when
    queued. Raises ``redis.RedisError`` when Redis is down (nothing queued)."""
    app = current_app
    conn = jobs.redis_connection()
    sealed = crypto.seal_transient(json.dumps({"e": event, "s": source}, ensure_ascii=False).encode(), PURPOSE)
    script = app.extensions.get("crm_telephony_push")
    if script is None:
        script = app.extensions["crm_telephony_push"] = conn.register_script(_PUSH)
    outcome = int(script(keys=[event_key(event["event_id"]), inbox_key(), lease_key(), pushed_key()],
                         args=[int(app.config["CRM_TELEPHONY_REPLAY_TTL_S"]), sealed, LEASE_S], client=conn))
    if outcome == 2:
        _schedule()
    return outcome != 0


def _schedule() -> None:
    jobs.enqueue("crm.telephony.jobs.drain_inbox")


def kick() -> bool:
    """Schedule a drain when events wait (in the inbox, or left in the processing list by a killed
    worker) and no drain holds the lease; True when one was scheduled (the periodic ``telephony-inbox``
    job)."""
    conn = jobs.redis_connection()
    if not (conn.llen(inbox_key()) or conn.llen(processing_key())):
        return False
    if not conn.set(lease_key(), "1", nx=True, ex=LEASE_S):
        return False
    _schedule()
    return True


def backlog() -> dict:
    """``{"waiting", "processing", "failed"}``: events in each list (``crm status``, the monitor)."""
    conn = jobs.redis_connection()
    return {"waiting": conn.llen(inbox_key()), "processing": conn.llen(processing_key()),
            "failed": conn.llen(failed_key())}


# --- building -----------------------------------------------------------------------------------------

def drain(max_events: int | None = None) -> dict:
    """Build the queued events into call records until the inbox is empty (or ``max_events`` were
    taken), holding the drain lease. Returns ``{"built", "duplicates", "failed", "recovered"}``
    (counts). Raises the database's or Redis's error after putting the event back (RQ retries)."""
    conn = jobs.redis_connection()
    inbox, processing, lease = inbox_key(), processing_key(), lease_key()
    conn.set(lease, "1", ex=LEASE_S)
    counts = {"built": 0, "duplicates": 0, "failed": 0, "recovered": 0}
    while conn.lmove(processing, inbox, "RIGHT", "LEFT") is not None:  # left by a killed drain: first again
        counts["recovered"] += 1
    if counts["recovered"]:
        log.warning("telephony inbox: %d event(s) left by an interrupted drain are queued again", counts["recovered"])
    taken = 0
    while max_events is None or taken < max_events:
        blob = conn.lmove(inbox, processing, "LEFT", "RIGHT")
        if blob is None:
            conn.delete(lease)
            # an event pushed after the empty read but before the lease was dropped scheduled no drain
            if conn.llen(inbox) and conn.set(lease, "1", nx=True, ex=LEASE_S):
                continue
            break
        taken += 1
        seq, _, sealed = bytes(blob).partition(b"|")
        try:
            outcome = _build(sealed)
        except (crypto.DecryptError, services.TelephonyError, ValueError, KeyError, TypeError) as exc:
            conn.lmove(processing, failed_key(), "RIGHT", "RIGHT")  # kept sealed, for `crm status` and a retry
            _mark_built(conn, seq)  # nobody waits for it any longer
            counts["failed"] += 1
            log.warning("telephony inbox: an event could not be built (%s); moved to the failed list",
                        type(exc).__name__)
            continue
        except BaseException:
            conn.lmove(processing, inbox, "RIGHT", "LEFT")
            conn.delete(lease)
            raise
        conn.lrem(processing, -1, blob)
        _mark_built(conn, seq)
        conn.expire(lease, LEASE_S)
        counts["built" if outcome else "duplicates"] += 1
    return counts


def _mark_built(conn, seq: bytes) -> None:
    if seq.isdigit():
        script = current_app.extensions.get("crm_telephony_built")
        if script is None:
            script = current_app.extensions["crm_telephony_built"] = conn.register_script(_BUILT)
        script(keys=[built_key()], args=[int(seq)], client=conn)


def settle(timeout_s: float = 2.0) -> bool:
    """Wait until every event queued before this call is built (read-your-writes: a PBX, or a test,
    that reads a call record right after its event was answered 202 sees the event in it), at most
    ``timeout_s`` seconds (then a warning is logged: is a worker serving the ``telephony`` queue?).
    Returns True when settled; True at once when nothing waits or Redis is down (the reader then
    sees what the database has)."""
    try:
        conn = jobs.redis_connection()
        target = int(conn.get(pushed_key()) or 0)
        if int(conn.get(built_key()) or 0) >= target:
            return True
        # end this request's transaction first: on SQLite it holds the write lock (every transaction
        # begins IMMEDIATE, crm.db), which the worker needs to build what we wait for
        db.session.commit()
        deadline = time.monotonic() + timeout_s
        while int(conn.get(built_key()) or 0) < target:
            if time.monotonic() >= deadline:
                log.warning("telephony inbox: events accepted %.1f s ago are not built yet; is a worker serving "
                            "the telephony queue (crm worker)?", timeout_s)
                return False
            time.sleep(0.005)
    except redis.RedisError:
        return True
    return True


def _build(sealed: bytes) -> bool:
    """Build one sealed event; True when it changed a record (False: a known event id)."""
    data = json.loads(crypto.open_transient(sealed, PURPOSE))
    ev = services.event_from_json(data["e"], data.get("s"))
    with audit.acting_as(audit.Actor(None, f"pbx:{data.get('s') or 'default'}", "system")):
        return not services.ingest(ev).duplicate


def requeue_failed() -> int:
    """Move the failed list's events back to the inbox and schedule a drain (after the cause was
    mended, e.g. a retired KEK restored); returns how many."""
    conn = jobs.redis_connection()
    moved = 0
    while conn.lmove(failed_key(), inbox_key(), "LEFT", "RIGHT") is not None:
        moved += 1
    if moved:
        kick()
    return moved


# --- the fast path ------------------------------------------------------------------------------------

_STRINGS = {  # field: longest value (TelephonyEventSchema); each may be null but event_id and type
    "event_id": 128, "type": 40, "callId": 250, "call_id": 250, "from": 80, "to": 80, "queue": 80,
    "answeringNumber": 80, "cause": 40, "at": 64, "url": 2000,
}


def clean_event(data) -> dict | None:
    """``data`` (the parsed JSON body) when the fast path may queue it as it is: an object whose known
    fields have the types and lengths ``TelephonyEventSchema`` allows, with no NUL anywhere, of a type in
    :data:`QUEUED_TYPES`, with a ``callId`` (or ``call_id``) and an ``at``. None sends the request on
    to the view, which names what is wrong (or, for a valid event of another kind, handles it). Only
    the known fields are kept (unknown ones are ignored, as the schema does)."""
    if not isinstance(data, dict):
        return None
    out = {}
    for name, longest in _STRINGS.items():
        value = data.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > longest or "\x00" in value:
            return None
        out[name] = value
    if not out.get("event_id") or out.get("type") not in QUEUED_TYPES:
        return None
    if not (out.get("callId") or out.get("call_id")) or not out.get("at"):
        return None
    direction = data.get("direction")
    if direction is not None:
        if direction not in ("in", "out"):
            return None
        out["direction"] = direction
    user = data.get("user")
    if user is not None:
        if isinstance(user, list):
            if len(user) > 20 or not all(isinstance(u, str) and len(u) <= 250 and "\x00" not in u for u in user):
                return None
        elif not isinstance(user, str) or len(user) > 250 or "\x00" in user:
            return None
        out["user"] = user
    for name, value in data.items():  # an unknown field may be ignored, but not one that cannot be stored
        if name not in out and name not in _STRINGS and name not in ("direction", "user") and _has_nul(value):
            return None
    return out


def _has_nul(value, depth: int = 0) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if depth > 32:
        return True
    if isinstance(value, dict):
        return any(_has_nul(k, depth + 1) or _has_nul(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v, depth + 1) for v in value)
    return False


def signature_ok(secret: str, raw: bytes, header: str) -> bool:
    """``header`` is ``sha256=<hex>``, the HMAC-SHA256 of ``raw`` under ``secret`` (constant time)."""
    expected = b"sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, header.strip().lower().encode("utf-8", "surrogateescape"))


def secret_for(app: Flask, source: str | None) -> tuple[str | None, bool]:
    """``(secret, configured)`` of the request's source (``X-CRM-Source``, None: the default secret)."""
    cfg = app.config
    per_source = cfg["CRM_TELEPHONY_SECRETS"] or {}
    configured = bool(cfg["CRM_TELEPHONY_SECRET"]) or bool(per_source)
    return (per_source.get(source) if source is not None else cfg["CRM_TELEPHONY_SECRET"]), configured


class FastWebhook:
    """WSGI middleware: ``POST /api/v1/telephony/events`` events that pass every check are queued
    (:func:`push`) and answered here; every other request goes to ``wsgi_app`` unchanged (the body
    re-supplied when it was read). See the module docstring."""

    def __init__(self, wsgi_app, app: Flask):
        self.wsgi_app, self.app = wsgi_app, app

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.wsgi_app(environ, start_response)
        if environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower() != "application/json":
            return self.wsgi_app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY:
            return self.wsgi_app(environ, start_response)
        raw = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(raw)  # the view reads it again if it gets the request
        answer = self._accept(environ, raw)
        if answer is None:
            return self.wsgi_app(environ, start_response)
        status, body = answer
        payload = json.dumps(body, ensure_ascii=False).encode()
        start_response(status, self._headers(len(payload), environ.get("wsgi.url_scheme") == "https"))
        return [payload]

    def _accept(self, environ, raw: bytes) -> tuple[str, dict] | None:
        app = self.app
        source = environ.get("HTTP_X_CRM_SOURCE", "").strip()[:40] or None
        secret, _ = secret_for(app, source)
        if not secret or not signature_ok(secret, raw, environ.get("HTTP_X_CRM_SIGNATURE", "")):
            return None
        try:
            event = clean_event(json.loads(raw))
        except (ValueError, RecursionError):
            return None
        if event is None:
            return None
        with app.app_context():
            try:
                services.check_window(services.parse_at(event["at"]))
            except services.TelephonyError:
                return None
            try:
                queued = push(event, source)
            except (redis.RedisError, OSError):
                return None  # the view answers 503
            app.logger.info("telephony event %s type=%s queued=%s", event["event_id"][:128], event["type"], queued)
        call_id = event.get("callId") or event.get("call_id")
        body = {"accepted": True, "duplicate": not queued, "event_id": event["event_id"], "callId": call_id,
                "state": None}
        return ("202 ACCEPTED" if queued else "200 OK"), body

    def _headers(self, length: int, secure: bool) -> list[tuple[str, str]]:
        """The headers every answer of the app carries (crm.app's security headers, crm.users.sessions' HSTS)."""
        cfg = self.app.config
        headers = [("Content-Type", "application/json"), ("Content-Length", str(length)),
                   ("Cache-Control", "no-store"), *SECURITY_HEADERS]
        if secure and cfg["CRM_HTTPS"] and cfg["CRM_HSTS_MAX_AGE_S"]:
            headers.append(("Strict-Transport-Security", f"max-age={int(cfg['CRM_HSTS_MAX_AGE_S'])}; includeSubDomains"))
        return headers


def install(app: Flask) -> None:
    """Put :class:`FastWebhook` in front of ``app.wsgi_app`` (the factory calls this before ProxyFix
    wraps both, so ``wsgi.url_scheme`` is the client's)."""
    app.wsgi_app = FastWebhook(app.wsgi_app, app)


__all__ = ["FastWebhook", "backlog", "clean_event", "drain", "install", "kick", "push", "requeue_failed", "secret_for", "settle",
           "signature_ok"]
