"""``/api/v1/telephony/…`` (the PBX's webhook, call records, callbacks, the queue board) and
``/api/v1/ivr/…`` (the IVR's lookups)."""
from __future__ import annotations

import hashlib
import hmac
import json

import redis
from flask import current_app, g, request

from crm import jobs
from crm.api import ApiError, Blueprint, load_body, token_required, translates, validation_error
from crm.calls import services as calls
from crm.errors import api_error
from crm.extensions import limiter
from crm.i18n import N_, lazy_gettext as _l, translate
from crm.security import audit
from crm.telephony import inbox, ivr, services, surge
from crm.telephony.schemas import (CallbackAttemptBodySchema, CallLogQuerySchema, CallLogSchema, CallbackAttemptSchema, CallbackListSchema,
                                   IvrAnswerSchema, IvrAppealQuerySchema, IvrPhoneQuerySchema, QueueBoardSchema,
                                   TelephonyAckSchema, TelephonyCallSchema, TelephonyEventSchema)

TELEPHONY_MAX_BODY = 64 * 1024  # bytes; a PBX event is a few hundred
SUPERVISORS = ("supervisor", "admin")

bp = Blueprint("api_telephony", __name__, description="Telephony: the PBX webhook, call records, callbacks, queue")
ivr_bp = Blueprint("api_ivr", __name__, description="IVR lookups (token of an `ivr` account)")


@translates(services.TelephonyError)
def _telephony_error(exc: services.TelephonyError) -> ApiError:
    return ApiError(exc.status, exc.code, str(exc))


@translates(calls.CallError)
def _call_error(exc: calls.CallError) -> ApiError:
    return ApiError(exc.status, exc.code, str(exc))


def _secret() -> tuple[str | None, str | None, bool]:
    """``(source, secret, configured)``: the source named by ``X-CRM-Source`` and its secret from
    ``CRM_TELEPHONY_SECRETS``, or no source and ``CRM_TELEPHONY_SECRET`` (:func:`inbox.secret_for`,
    as the fast path reads them)."""
    source = request.headers.get("X-CRM-Source", "").strip()[:40] or None
    secret, configured = inbox.secret_for(current_app, source)
    return source, secret, configured


class _Hashing:
    """A read-only stream that hashes what passes through it (SHA-256)."""

    def __init__(self, raw):
        self.raw, self.sha = raw, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        chunk = self.raw.read(n)
        self.sha.update(chunk)
        return chunk


@bp.route("/telephony/events", methods=["POST"])
@bp.document_body(TelephonyEventSchema)  # loaded after the signature is checked
@bp.response(202, TelephonyAckSchema, description="accepted: newCall/answer/hangup queued, the call record is "
                                                   "built by a worker within moments (state: null); a recording "
                                                   "is stored at once (state: the record's)")
@bp.alt_response(200, schema=TelephonyAckSchema, description="a replayed event_id (duplicate: true)")
@bp.errors({400: "malformed JSON or an invalid field; `at` missing, malformed or more than CRM_TELEPHONY_WINDOW_S "
                 "from now (stale_event); a recording URL off the allow-list (url_not_allowed), a file that is not "
                 "audio or does not match sha256",
            401: "missing or wrong signature, an unknown X-CRM-Source, or a body neither JSON nor multipart "
                 "(its signature cannot be checked)", 413: "body over 64 KiB (JSON)",
            503: "no secret configured (telephony_not_configured) or Redis is down"})
@bp.doc(security=[{"telephonySignature": []}])
def telephony_event():
    """PBX webhook: Zammad-compatible call events (newCall, answer, hangup) and recording

    Authenticated by `X-CRM-Signature: sha256=<hex>`, the HMAC-SHA256 of the raw body under
    CRM_TELEPHONY_SECRET, or, with `X-CRM-Source: <name>`, under that source's secret of
    CRM_TELEPHONY_SECRETS. A recording may come as multipart: the event JSON in the `event` field
    (the signature covers exactly its bytes, and it carries the file's `sha256`) and the file in
    `file`; or as JSON with a `url` on CRM_TELEPHONY_RECORDING_URLS, which the worker fetches. Either
    way the transcription is queued. Event ids are unique for good (database), and remembered in Redis
    for CRM_TELEPHONY_REPLAY_TTL_S; a replay is answered 200 with duplicate: true and changes nothing.
    newCall, answer and hangup are queued (sealed, in Redis) and built into the call record by a worker
    within moments, in any order (GET /telephony/calls/{callId}); the answer's `state` is then null. Numbers are stored
    encrypted and never logged; the caller is matched to a citizen through the phone blind index."""
    app = current_app
    source, secret, configured = _secret()
    if not configured:
        return api_error(503, "telephony_not_configured",
                         translate(N_("секрет для событий телефонии не настроен (CRM_TELEPHONY_SECRET)")))
    multipart = request.mimetype == "multipart/form-data"
    if not multipart and request.mimetype != "application/json":  # e.g. curl --data's form encoding
        # its raw body is not what was signed once parsed as a form: unsigned (401), saying why
        return api_error(401, "invalid_signature",
                         translate(N_("подпись не проверить: событие отправляется как JSON (Content-Type: "
                                      "application/json) или, с файлом записи, как multipart/form-data")))
    if not multipart:
        request.max_content_length = TELEPHONY_MAX_BODY
        raw = request.get_data(cache=True)
    else:
        raw = (request.form.get("event") or "").encode("utf-8")
    if source is not None and not secret:
        return api_error(401, "invalid_signature", translate(N_("источник X-CRM-Source не настроен "
                                                                "(CRM_TELEPHONY_SECRETS) или подпись неверна")))
    if not secret or not inbox.signature_ok(secret, raw, request.headers.get("X-CRM-Signature", "")):
        return api_error(401, "invalid_signature", translate(N_("подпись X-CRM-Signature отсутствует или неверна")))
    if multipart:
        schema = TelephonyEventSchema()
        try:
            data = json.loads(raw)
        except ValueError:
            raise ApiError(400, "invalid_json", _l("поле «event» должно содержать JSON-объект события")) from None
        if not isinstance(data, dict):
            raise ApiError(400, "invalid_json", _l("поле «event» должно содержать JSON-объект события"))
        try:
            event = schema.load(data)
        except Exception as err:  # marshmallow.ValidationError
            raise validation_error(err, schema) from None
    else:
        event = load_body(TelephonyEventSchema)
    kind = event["type"]
    if kind not in services.EVENT_TYPES + services.LEGACY_TYPES:
        raise ApiError(400, "invalid_type", _l("неизвестный тип события «%(event_type)s»", event_type=kind[:40]))
    key = inbox.event_key(event["event_id"])
    ttl = int(app.config["CRM_TELEPHONY_REPLAY_TTL_S"])
    try:
        conn = jobs.redis_connection()
        if conn.exists(key):
            return {"accepted": True, "duplicate": True, "event_id": event["event_id"]}, 200
    except redis.RedisError:
        return api_error(503, "queue_unavailable", translate(N_("хранилище событий недоступно, повторите позже")))
    if kind in services.LEGACY_TYPES:  # the first version's events: acknowledged, nothing built
        if not conn.set(key, "1", nx=True, ex=ttl):
            return {"accepted": True, "duplicate": True, "event_id": event["event_id"]}, 200
        app.logger.info("telephony event %s type=%s (legacy)", event["event_id"], kind)
        return {"accepted": True, "duplicate": False, "event_id": event["event_id"]}, 202
    ev = services.event_from_json(event, source)
    services.check_window(ev.at)
    if kind in inbox.QUEUED_TYPES:  # built by the worker (crm.telephony.inbox); usually the fast path's
        try:
            queued = inbox.push({k: v for k, v in event.items() if v is not None}, source)
        except redis.RedisError:
            return api_error(503, "queue_unavailable", translate(N_("хранилище событий недоступно, повторите позже")))
        app.logger.info("telephony event %s type=%s queued=%s", ev.event_id, kind, queued)
        return ({"accepted": True, "duplicate": not queued, "event_id": ev.event_id, "callId": ev.call_id,
                 "state": None}, 202 if queued else 200)
    staged = _recording(event, multipart)
    with audit.acting_as(audit.Actor(None, f"pbx:{source or 'default'}", "system")):
        result = services.ingest(ev, staged=staged)
    try:
        conn.set(key, "1", ex=ttl)
    except redis.RedisError:
        pass  # the database keeps the id for good; Redis only answers replays sooner
    app.logger.info("telephony event %s type=%s duplicate=%s", ev.event_id, kind, result.duplicate)
    body = {"accepted": True, "duplicate": result.duplicate, "event_id": ev.event_id, "callId": ev.call_id,
            "state": result.state}
    return body, 200 if result.duplicate else 202


def _recording(event: dict, multipart: bool):
    """The recording of a ``recording`` event: a multipart ``file`` staged (validated, encrypted on
    disk) and checked against the event's ``sha256``, or None for a ``url`` on the allow-list."""
    upload = request.files.get("file") if multipart else None
    if upload is None:
        url = event.get("url")
        if not url:
            raise ApiError(400, "recording_required",
                           _l("событие recording: приложите файл (multipart «file») или укажите «url»"))
        if not services.url_allowed(url):
            raise ApiError(400, "url_not_allowed", _l("адрес записи не входит в разрешённый список "
                                                      "(CRM_TELEPHONY_RECORDING_URLS)"))
        return None
    if not event.get("sha256"):
        raise ApiError(400, "invalid_sha256", _l("для загруженного файла укажите его SHA-256 в поле «sha256» события"))
    stream = _Hashing(upload.stream)
    staged = calls.stage_upload(stream, upload.filename or "")
    if not hmac.compare_digest(stream.sha.hexdigest(), event["sha256"].lower()):
        staged.discard()
        raise ApiError(400, "sha256_mismatch", _l("SHA-256 файла не совпадает с указанным в событии"))
    return staged


@bp.route("/telephony/calls", methods=["GET"])
@token_required(*SUPERVISORS, session_ok=True)
@bp.query(CallLogQuerySchema)
@bp.response(200, CallLogSchema)
@bp.errors({400: "a malformed date (invalid_date_from, invalid_date_to), an unknown state or direction, a bad "
                 "cursor (invalid_cursor)"})
def telephony_call_list(args: dict):
    """The caller log: the PBX's calls, newest first, with filters

    Each item is the call record of GET /telephony/calls/{callId} (no phone number). `date_from`,
    `date_to`: days in CRM_TIMEZONE, both included; `operator`: the user name of who answered last.
    Keyset paging as GET /appeals: follow `next_cursor` until null. Reads its writes: events answered
    202 before this request are built first (waits at most 1 s for the worker)."""
    inbox.settle(1.0)
    page = services.call_log(**services.log_filters(args), limit=args.get("limit") or 50, cursor=args.get("cursor") or None)
    return {"items": [services.as_dict(c) for c in page.items], "next_cursor": page.next_cursor, "total": page.total}


@bp.route("/telephony/calls/<path:call_id>", methods=["GET"])
@token_required(*SUPERVISORS)
@bp.response(200, TelephonyCallSchema)
@bp.errors({404: "no event of this callId was received"})
def telephony_call(call_id: str):
    """A call as the PBX's events describe it: state, waiting and talk time, who answered

    ``state``: ``waiting`` (offered, not answered; ``wait_s`` runs until now), ``answered`` (talking),
    ``abandoned`` (hung up before an answer; ``abandoned_after_s``), ``ended``. No phone number.
    Reads its writes: events answered 202 before this request are built first (waits at most 2 s)."""
    inbox.settle()
    call = services.get(call_id)
    if call is None:
        raise ApiError(404, "not_found", _l("звонок не найден"))
    return services.as_dict(call)


@bp.route("/telephony/callbacks", methods=["GET"])
@token_required("operator", *SUPERVISORS, session_ok=True)
@bp.response(200, CallbackListSchema)
def callback_list():
    """The callback worklist: abandoned inbound calls not yet called back, earliest deadline first

    Each has its deadline (``due_at``: the abandon plus CRM_TELEPHONY_CALLBACK_S, or the queue's own of
    CRM_TELEPHONY_CALLBACK_QUEUE_S) and ``overdue``. A call leaves the list when an operator logs a
    reached callback (POST …/attempts), the PBX reports an outbound call to the number, or the caller
    calls again and is answered. No phone number: the page reveals it, logged."""
    inbox.settle(1.0)
    return {"items": [services.callback_dict(c) for c in services.open_callbacks()]}


@bp.route("/telephony/callbacks/<call_id>/attempts", methods=["POST"])
@token_required("operator", *SUPERVISORS)
@bp.body(CallbackAttemptBodySchema)
@bp.response(201, CallbackAttemptSchema)
@bp.errors({400: "unknown outcome", 404: "unknown id", 409: "the call is not on the worklist (not_on_worklist)"})
def callback_attempt(body: dict, call_id: str):
    """Log a callback attempt (``outcome``: reached, no_answer, busy, wrong_number); logged

    ``call_id`` is the worklist item's ``id``. ``reached`` (or ``wrong_number``) clears the callback."""
    call = services.by_id(call_id)
    if call is None:
        raise ApiError(404, "not_found", _l("звонок не найден"))
    attempt = services.log_attempt(call, body["outcome"], user=g.api_user)
    return {"id": attempt.id, "outcome": attempt.outcome, "cleared": call.callback_done_at is not None}, 201


@bp.route("/telephony/queue", methods=["GET"])
@token_required(*SUPERVISORS, session_ok=True)
@bp.response(200, QueueBoardSchema)
def queue_board():
    """The queue board: calls waiting, today's service level, ASA, abandonment, the 5-minute norm, agents

    Today is the day in CRM_TIMEZONE. ``service_level``: answered within 20 s over offered calls
    (answered + abandoned, short abandons under 5 s excluded and counted apart), target 80 %;
    ``asa_s``: mean wait of answered calls; ``abandon_rate``: abandons over offered;
    ``answered_over_norm``: answered after more than 300 s (ПП РФ № 416, an emergency call answered
    within 5 minutes). ``surge``: null, or the queue surge alert — calls waiting ≥ CRM_QUEUE_SURGE_WAITING,
    or arrivals in the last CRM_QUEUE_SURGE_WINDOW_MIN minutes ≥ max(CRM_QUEUE_SURGE_FLOOR,
    CRM_QUEUE_SURGE_FACTOR × the usual level of that weekday and hour) — with a Russian ``text`` and
    ``incidents``: buildings whose callers (or whose appeals) suggest opening an incident, each with a
    ``url`` (the incident form prefilled, the pending proposal, or the incident already open).
    Events answered 202 before this request are counted (waits at most 1 s for the worker)."""
    inbox.settle(1.0)
    board = services.queue_board()
    surge.with_links(board["surge"])
    return board


# --- the IVR ------------------------------------------------------------------------------------------

#: Answers to the GET forms, whose phone number is in the URL: RFC 9745 ``Deprecation`` and RFC 8594
#: ``Link`` to the POST form (as crm.appeals.api's ``q``); request logs drop the query (crm/weblog.py).
def _in_url_headers(path: str) -> dict:
    return {"Deprecation": "@1796601600", "Link": f'</api/v1/ivr/{path}>; rel="successor-version"'}


def _token_key() -> str:
    """The rate-limit key of an IVR request: a SHA-256 of its bearer token (one budget per ``ivr``
    account's token, whichever address the PBX calls from), else the client address."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return "ivr-token:" + hashlib.sha256(header[7:].strip().encode()).hexdigest()
    return "ivr-addr:" + (request.remote_addr or "-")


#: One budget for all the IVR's lookups per token (``CRM_IVR_LIMIT``, e.g. ``120 per minute``): the
#: answers say whether a number has open appeals or an outage at its address, and appeal numbers are
#: sequential, so a leaked token must not be able to walk through them (issue 13).
ivr_limit = limiter.shared_limit(lambda: current_app.config["CRM_IVR_LIMIT"], scope="ivr", key_func=_token_key)


_DEPRECATION_DOC = {
    "Deprecation": {"description": "RFC 9745: the number in the URL is deprecated; POST the same fields as JSON",
                    "schema": {"type": "string"}},
    "Link": {"description": "the successor: POST to the same path", "schema": {"type": "string"}}}


@ivr_bp.route("/ivr/appeal-status", methods=["GET"])
@ivr_limit
@token_required("ivr")
@ivr_bp.query(IvrAppealQuerySchema)
@ivr_bp.response(200, IvrAnswerSchema, headers=_DEPRECATION_DOC)
@ivr_bp.errors({400: "neither or both of number and phone (number_or_phone), not a Russian phone (invalid_phone)",
                 429: "over the token's budget of lookups (CRM_IVR_LIMIT)"})
@ivr_bp.doc(deprecated=True)
def ivr_appeal_status_in_url(args: dict):
    """The status of an appeal, by its number or by the caller's phone, as a Russian sentence (deprecated GET)

    The same as POST /ivr/appeal-status, the fields in the query; answers carry ``Deprecation`` and
    ``Link``. Every lookup is logged (ivr.lookup)."""
    return ivr.appeal_status(number=args.get("number"), phone=args.get("phone")), 200, \
        _in_url_headers("appeal-status")


@ivr_bp.route("/ivr/appeal-status", methods=["POST"])
@ivr_limit
@token_required("ivr")
@ivr_bp.body(IvrAppealQuerySchema)
@ivr_bp.response(200, IvrAnswerSchema)
@ivr_bp.errors({400: "as GET", 429: "as GET"})
def ivr_appeal_status(body: dict):
    """The status of an appeal, by its number or by the caller's phone, as a Russian sentence

    ``{"number"}`` (keyed in by the caller) or ``{"phone"}`` (the caller's number): ``{"text"}``, e.g.
    «Обращение номер 2026 дробь 42 в работе у исполнителя. Срок выполнения — до 12 декабря.»; the
    appeal's number, status and date only. Every lookup is logged (ivr.lookup)."""
    return ivr.appeal_status(number=body.get("number"), phone=body.get("phone"))


@ivr_bp.route("/ivr/outage", methods=["GET"])
@ivr_limit
@token_required("ivr")
@ivr_bp.query(IvrPhoneQuerySchema)
@ivr_bp.response(200, IvrAnswerSchema, headers=_DEPRECATION_DOC)
@ivr_bp.errors({400: "not a Russian phone (invalid_phone)", 429: "over the token's budget of lookups (CRM_IVR_LIMIT)"})
@ivr_bp.doc(deprecated=True)
def ivr_outage_in_url(args: dict):
    """The active outage at the caller's building (deprecated GET: use POST)"""
    return ivr.outage(phone=args["phone"]), 200, _in_url_headers("outage")


@ivr_bp.route("/ivr/outage", methods=["POST"])
@ivr_limit
@token_required("ivr")
@ivr_bp.body(IvrPhoneQuerySchema)
@ivr_bp.response(200, IvrAnswerSchema)
@ivr_bp.errors({400: "not a Russian phone (invalid_phone)", 429: "over the token's budget of lookups (CRM_IVR_LIMIT)"})
def ivr_outage(body: dict):
    """The active outage at the caller's building, as a Russian sentence; logged

    The caller is found by the phone (blind index), their house through their appeals or address; the
    answer is the incident's announcement (crm.incidents) and its announced end, or that nothing is
    registered (found: false), or that the address is not known."""
    return ivr.outage(phone=body["phone"])
