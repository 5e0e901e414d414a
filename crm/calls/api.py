"""``/api/v1/calls`` (upload a recording, read a call with its transcript and automatic QA checks)
and ``/api/v1/telephony/events`` (the PBX webhook)."""
from __future__ import annotations

import hashlib
import hmac

import redis
from flask import current_app, g, request

from crm import jobs
from crm.api import ApiError, bp, token_required
from crm.api.openapi import check_body
from crm.appeals import services as appeals
from crm.calls import search as transcript_search
from crm.calls import services as calls
from crm.db import db
from crm.errors import api_error
from crm.qa import services as qa

TELEPHONY_MAX_BODY = 64 * 1024  # bytes; a PBX event is a few hundred


@bp.errorhandler(calls.CallError)
def _call_error(exc: calls.CallError):
    db.session.rollback()
    return api_error(exc.status, exc.code, str(exc))


@bp.post("/calls")
@token_required("operator", "supervisor", "admin")
def call_upload():
    """Multipart ``file`` (+ ``appeal_id``) → 202 with the call, ``queued``. A file that is empty,
    not audio, damaged or too long is refused (400) and nothing is stored."""
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(400, "file_required", "приложите файл записи в поле «file» (multipart/form-data)")
    appeal = None
    if request.form.get("appeal_id"):
        appeal = appeals.get(request.form["appeal_id"])
        if appeal is None:
            raise ApiError(404, "appeal_not_found", "обращение не найдено")
    # the call belongs to the operator who took it: the uploader, or the appeal's operator
    operator_id = g.api_user.id if g.api_user.role == "operator" else (appeal.operator_id if appeal else None)
    call = calls.store_recording(upload.stream, upload.filename or "", appeal=appeal, operator_id=operator_id)
    return calls.as_dict(call), 202, {"Location": f"{bp.url_prefix}/calls/{call.id}"}


@bp.get("/calls/<call_id>")
@token_required("supervisor", "admin", "operator")
def call_get(call_id: str):
    """The call, its transcript (the read is logged) and ``qa_checks`` once transcribed."""
    call = calls.get(call_id)
    if call is None:
        raise ApiError(404, "not_found", "звонок не найден")
    if g.api_user.role == "operator" and call.operator_id != g.api_user.id:
        raise ApiError(403, "forbidden", "оператор видит только свои звонки")
    purpose = "appeal_processing" if g.api_user.role == "operator" else "call_recording_qa"
    data = calls.view(call, purpose=purpose)
    data["qa_checks"] = qa.checks_for_call(call, data["transcript"]["segments"])  # stored by the transcription job
    return data


@bp.post("/calls/<call_id>/transcription")
@token_required("supervisor", "admin")
def call_retranscribe(call_id: str):
    """Re-run the call's transcription (supervisor tooling; no body) → 202 with the call,
    ``queued``; the request is logged (``call.retranscribe``). 404 unknown call; 409
    ``already_queued`` while a transcription is queued or running (a repeated POST never queues a
    second job), 409 ``recording_missing`` when the stored recording is gone; 503
    ``queue_unavailable`` when Redis is down and the call is queued or processing."""
    call = calls.get(call_id)
    if call is None:
        raise ApiError(404, "not_found", "звонок не найден")
    call = calls.retranscribe(call)
    return calls.as_dict(call), 202, {"Location": f"{bp.url_prefix}/calls/{call.id}"}


def _signature_ok(secret: str | bytes, raw: bytes, header: str) -> bool:
    key = secret.encode() if isinstance(secret, str) else secret
    expected = b"sha256=" + hmac.new(key, raw, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, header.strip().lower().encode("utf-8", "surrogateescape"))


@bp.post("/telephony/events")
def telephony_event():
    """A PBX event, signed ``X-CRM-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` under
    ``CRM_TELEPHONY_SECRET``. 202 ``{accepted, duplicate: false}``; a replayed ``event_id`` (kept
    in Redis for ``CRM_TELEPHONY_REPLAY_TTL_S``) 200 ``{accepted, duplicate: true}``; 401 for a
    missing or wrong signature; 503 when no secret is configured or Redis is down.

    The event is checked, de-duplicated and logged (type and ids only, never the caller's number);
    linking it to calls is not done yet."""
    app = current_app
    secret = app.config["CRM_TELEPHONY_SECRET"]
    if not secret:
        return api_error(503, "telephony_not_configured", "секрет для событий телефонии не настроен (CRM_TELEPHONY_SECRET)")
    request.max_content_length = TELEPHONY_MAX_BODY
    raw = request.get_data(cache=True)
    if not _signature_ok(secret, raw, request.headers.get("X-CRM-Signature", "")):
        return api_error(401, "invalid_signature", "подпись X-CRM-Signature отсутствует или неверна")
    event = check_body("TelephonyEvent")
    if event["type"] not in ("call.started", "call.ended"):
        raise ApiError(400, "invalid_type", f"неизвестный тип события «{event['type'][:40]}»")
    key = f"{app.config['CRM_QUEUE_PREFIX']}crm:telephony:event:{event['event_id']}"
    ttl = int(app.config["CRM_TELEPHONY_REPLAY_TTL_S"])
    try:
        first = jobs.redis_connection().set(key, "1", nx=True, ex=ttl)
    except redis.RedisError:
        return api_error(503, "queue_unavailable", "хранилище событий недоступно, повторите позже")
    if not first:
        return {"accepted": True, "duplicate": True, "event_id": event["event_id"]}, 200
    app.logger.info("telephony event %s type=%s call_id=%s", event["event_id"], event["type"], event.get("call_id"))
    return {"accepted": True, "duplicate": False, "event_id": event["event_id"]}, 202


# --- transcript search (crm/calls/search.py) ---------------------------------------------------------

@bp.get("/calls/search")
@token_required("supervisor", "admin")
def call_search():
    """``?q=`` (+ ``start``, ``end``, ``speaker``, ``operator_id``, ``limit``) → the calls whose
    transcript contains the phrase (see :func:`crm.calls.search.search_transcripts`); 400 with
    ``invalid_*`` / ``q_*`` codes for bad input, before anything is read. Each transcript
    decrypted is logged."""
    try:
        result = transcript_search.search_transcripts(**transcript_search.parse_args(request.args), user=g.api_user)
    except transcript_search.SearchError as exc:
        raise ApiError(400, exc.code, str(exc)) from None
    return result.as_dict()
