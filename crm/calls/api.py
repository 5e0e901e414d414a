"""``/api/v1/calls``: upload a recording, read a call with its transcript and automatic QA checks,
search transcripts. (The PBX webhook is crm.telephony.api.)"""
from __future__ import annotations

from flask import g, request

from crm import hooks
from crm.api import ApiError, Blueprint, token_required, translates
from crm.calls import search as transcript_search
from crm.calls import services as calls
from crm.calls.schemas import (CallDetailSchema, CallQuerySchema, CallSchema, CallSearchQuerySchema,
                               CallSearchResultSchema, CallUploadSchema)
from crm.citizens import services as citizens
from crm.i18n import lazy_gettext as _l


bp = Blueprint("api_calls", __name__, description="Calls: recordings, transcripts, search")


@translates(calls.CallError)
def _call_error(exc: calls.CallError) -> ApiError:
    return ApiError(exc.status, exc.code, str(exc))


@translates(transcript_search.SearchError)
def _search_error(exc: transcript_search.SearchError) -> ApiError:
    return ApiError(400, exc.code, str(exc))


@bp.route("/calls", methods=["POST"])
@token_required("operator", "supervisor", "admin")
@bp.document_body(CallUploadSchema, "multipart/form-data")
@bp.response(202, CallSchema, description="queued")
@bp.errors({400: "no file, empty, not audio, damaged or too long; nothing stored", 404: "appeal_id or citizen_id unknown",
            413: "larger than MAX_CONTENT_LENGTH (200 MB by default)"})
def call_upload():
    """Upload a call recording; it is validated, encrypted, stored and queued for transcription

    Multipart ``file`` (+ ``appeal_id``, or ``citizen_id`` of the known caller: the call then waits for
    that citizen's next appeal, which attaches it) → 202 with the call, ``queued``. A file that is empty, not audio,
    damaged or too long is refused (400) and nothing is stored."""
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(400, "file_required", _l("приложите файл записи в поле «file» (multipart/form-data)"))
    appeal = None
    if request.form.get("appeal_id"):
        appeal = hooks.ask("appeal.lookup", appeal_id=request.form["appeal_id"])
        if appeal is None:
            raise ApiError(404, "appeal_not_found", _l("обращение не найдено"))
    citizen_id = None
    if appeal is None and request.form.get("citizen_id"):
        citizen = citizens.get(request.form["citizen_id"])
        if citizen is None or citizen.erased_at is not None:
            raise ApiError(404, "citizen_not_found", _l("заявитель не найден"))
        citizen_id = citizen.id
    # the call belongs to the operator who took it: the uploader, or the appeal's operator
    operator_id = g.api_user.id if g.api_user.role == "operator" else (appeal.operator_id if appeal else None)
    call = calls.store_recording(upload.stream, upload.filename or "", appeal=appeal, operator_id=operator_id,
                                 citizen_id=citizen_id)
    return calls.as_dict(call), 202, {"Location": f"{bp.url_prefix}/calls/{call.id}"}


@bp.route("/calls/<call_id>", methods=["GET"])
@token_required("supervisor", "admin", "operator")
@bp.query(CallQuerySchema)
@bp.response(200, CallDetailSchema)
@bp.errors({400: "reveal=true with a purpose not offered for the call (code invalid_purpose)", 404: "unknown id"})
def call_get(args: dict, call_id: str):
    """A call with its transcript and automatic QA checks; the transcript read is logged

    Operators may read only calls they handled (else 403) and see the transcript as said. Supervisors
    and admins read for quality control: without the citizen's consent to call_recording_qa (or for a
    call tied to no citizen) the transcript is withheld (``transcript`` = ``{"segments": [], "withheld":
    "no_consent"}``); with it, the citizen's phone numbers, names, addresses and e-mail addresses in the
    segments' text and words are masked (``[телефон]``, ``[имя]``, ``[адрес]``, ``[e-mail]``) unless
    ``reveal=true``, which is logged as ``transcript.reveal`` with the kinds of identifiers shown and
    ``purpose``: ``call_recording_qa`` (checking what the operator took down) or ``appeal_processing``
    (work on the call's appeal; only for a call tied to one), any other value refused (400
    ``invalid_purpose``). Without ``purpose`` the reveal is logged as ``call_recording_qa`` with a note
    that no purpose was given (clients written before the parameter keep working); send one."""
    call = calls.get(call_id)
    if call is None:
        raise ApiError(404, "not_found", _l("звонок не найден"))
    if g.api_user.role == "operator" and call.operator_id != g.api_user.id:
        raise ApiError(403, "forbidden", _l("оператор видит только свои звонки"))
    reveal = args.get("reveal", "").lower() in ("1", "true", "yes")
    data = calls.view(call, purpose=calls.read_purpose(g.api_user), reveal=reveal,
                      reveal_purpose=(args.get("purpose") or "").strip() or None)
    for extra in hooks.fire("call.api_fields", call=call, segments=data["transcript"]["segments"]):
        data.update(extra or {})  # QA: qa_checks, stored by the transcription job
    return data


@bp.route("/calls/<call_id>/transcription", methods=["POST"])
@token_required("supervisor", "admin")
@bp.response(202, CallSchema, description="queued again")
@bp.errors({403: "the citizen has not consented to quality control of the recording, or withdrew it: a re-run "
                 "is quality control (code no_consent)",
            404: "unknown id",
            410: "the recording was destroyed with the citizen's data (code erased) or after a QA-consent "
                 "withdrawal (code recording_destroyed)",
            409: "a transcription is already queued or running (code already_queued; a repeated POST queues "
                 "nothing), or the stored recording is gone (code recording_missing)",
            503: "Redis is down and the call is queued or processing (code queue_unavailable)"})
def call_retranscribe(call_id: str):
    """Run the call's transcription again; the request is logged

    No body. Status, progress and error are reset and the job is queued; the transcript in place stays
    until the new one replaces it. Poll GET /calls/{id} for the result. The request is logged
    (``call.retranscribe``)."""
    call = calls.get(call_id)
    if call is None:
        raise ApiError(404, "not_found", _l("звонок не найден"))
    call = calls.retranscribe(call)
    return calls.as_dict(call), 202, {"Location": f"{bp.url_prefix}/calls/{call.id}"}


# --- transcript search (crm/calls/search.py) ---------------------------------------------------------

@bp.route("/calls/search", methods=["POST"])
@token_required("supervisor", "admin")
@bp.body(CallSearchQuerySchema)
@bp.response(200, CallSearchResultSchema)
@bp.errors({400: "malformed JSON (invalid_json), no phrase or one under 3 letters (q_required, q_too_short, "
                 "q_too_long), a bad date (invalid_start, invalid_end, invalid_period), speaker, operator_id or "
                 "limit"})
def call_search(body: dict):
    """Search call transcripts for a phrase, the parameters in a JSON body; every transcript read is logged

    The phrase travels in the body, never in the URL, so it stays out of web-server, proxy and gateway
    logs. Transcripts are encrypted, so calls of the period are decrypted newest first, at most
    CRM_CALL_SEARCH_MAX_CALLS (500) per search; scan_limit_reached says the bound was hit. Only calls whose
    citizen consents to call_recording_qa are read. Bad input is refused (400, ``invalid_*`` / ``q_*``)
    before anything is read (:func:`crm.calls.search.parse_args`)."""
    args = {k: str(v) for k, v in body.items() if v is not None}
    result = transcript_search.search_transcripts(**transcript_search.parse_args(args), user=g.api_user)
    return result.as_dict()


@bp.route("/calls/search", methods=["GET"])
@token_required("supervisor", "admin")
@bp.errors({400: "always (code phrase_in_url): search with POST /calls/search, the phrase in the JSON body"})
@bp.doc(deprecated=True)
def call_search_in_url():
    """Refused: search with POST /calls/search

    A phrase in the URL (what was said on a call: names, addresses, phone numbers) would end up in
    request logs, proxies and browser history, so this answers 400 ``phrase_in_url`` and reads nothing."""
    raise ApiError(400, "phrase_in_url", _l(
        "фраза поиска не принимается в адресе запроса (он попадает в журналы веб-серверов и прокси): отправьте "
        "POST /api/v1/calls/search с JSON-телом {\"q\": \"…\", \"start\"?, \"end\"?, \"speaker\"?, "
        "\"operator_id\"?, \"limit\"?}"))
