"""Call page (audio player beside the transcript, scorecard) and the decrypted audio stream."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from crm import hooks
from crm.calls import search, services
from crm.calls.forms import RevealForm
from crm.i18n import Labels
from crm.security.permissions import roles_required
from crm.timeutil import local_tz
from crm.users import services as users

bp = Blueprint("calls", __name__)


@bp.app_context_processor
def _call_labels():
    return {"CALL_STATUS_RU": Labels(services.STATUS_RU)}


@bp.get("/calls/<call_id>")
@roles_required("supervisor", "admin", "operator")
def call_detail(call_id):
    return render_call(services.get_for(current_user, call_id))


@bp.post("/calls/<call_id>/reveal")
@roles_required("supervisor", "admin")
def call_reveal(call_id):
    """The call page with the citizen's identifiers in the transcript unmasked, for this page only;
    logged as ``transcript.reveal`` with the purpose chosen in the form (:class:`RevealForm`; a POST
    with the CSRF token: a link or a reload cannot reveal). No purpose chosen: the masked page again
    (422) with the form's error. The form's one-time key makes a double click log one reveal."""
    call = services.get_for(current_user, call_id)
    form = RevealForm.for_call(call)
    if not form.validate_on_submit():
        return render_call(call, status=422, reveal_form=form)
    return render_call(call, reveal=True, reveal_purpose=form.purpose.data, reveal_key=form.key.data)


def render_call(call, status: int = 200, reveal: bool = False, *, reveal_purpose: str | None = None,
                reveal_key: str | None = None, reveal_form: RevealForm | None = None, **panel_args):
    """The call page, with the sections higher features add through the ``call.page`` hook (each
    subscriber returns ``{"template", ...}`` or None); ``panel_args`` go to them (e.g. QA's ``form``:
    a scorecard form sent back with its answers and errors, with ``status`` 422). ``reveal``: a QA
    reader asked to see the citizen's identifiers unmasked for ``reveal_purpose``
    (:func:`crm.calls.services.view` logs it); ``reveal_form``: the reveal form sent back with its error."""
    data = services.view(call, purpose=services.read_purpose(current_user), reveal=reveal, pieces=True,
                         reveal_purpose=reveal_purpose, reveal_key=reveal_key)
    panels = [p for p in hooks.fire("call.page", call=call, user=current_user, status=status, **panel_args) if p]
    # «Расшифровать заново» is offered only where the re-run would not be refused (call_retranscribe runs
    # it for quality control: the QA-consent gate, a destroyed recording)
    can_retranscribe = (getattr(current_user, "role", None) in ("supervisor", "admin")
                        and services.transcription_refusal(call, services.QA_PURPOSE) is None)
    return render_template("calls/detail.html", call=data, operator=users.get(call.operator_id),
                           panels=panels, revealed=reveal, can_retranscribe=can_retranscribe,
                           reveal_form=reveal_form or RevealForm.for_call(call, formdata=None)), status


@bp.get("/calls/<call_id>/audio")
@roles_required("supervisor", "admin", "operator")
def call_audio(call_id):
    call = services.get_for(current_user, call_id)
    purpose = services.read_purpose(current_user)
    # for quality control only with the citizen's consent; a destroyed recording is answered 410 below
    if not (services.is_erased(call) or services.recording_destroyed(call)) and not services.may_read(call, purpose):
        abort(403)
    mimetype = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg", "flac": "audio/flac"}.get(
        (call.audio_format or "").split("/")[0], "application/octet-stream")
    size = call.size_bytes
    rng = request.range
    start, end = 0, size
    if rng is not None and rng.units == "bytes" and len(rng.ranges) == 1:
        bounds = rng.range_for_length(size)
        if bounds is None:
            resp = Response(status=416)
            resp.headers["Content-Range"] = f"bytes */{size}"
            return resp
        start, end = bounds
    if rng is None:  # whole file: stream it chunk by chunk
        resp = Response(services.stream_recording(call, purpose=purpose), mimetype=mimetype)
        resp.headers["Content-Length"] = str(size)
    else:
        resp = Response(services.read_recording(call, start, end, purpose=purpose), status=206, mimetype=mimetype)
    if rng is not None:
        resp.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    resp.headers["Accept-Ranges"] = "bytes"
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/calls/<call_id>/retranscribe")
@roles_required("supervisor", "admin")
def call_retranscribe(call_id):
    """Re-run the transcription (:func:`crm.calls.services.retranscribe`: logged, double-click safe)."""
    call = services.get(call_id) or abort(404)
    try:
        services.retranscribe(call)  # leaves nothing half-written when it refuses
    except services.CallError as exc:
        flash(str(exc), "info" if exc.code == "already_queued" else "error")
    else:
        flash(_("Запись поставлена на повторную расшифровку."), "success")
    return redirect(url_for("calls.call_detail", call_id=call_id))


# --- transcript search (crm/calls/search.py) ---------------------------------------------------------

#: Search fields that may stand in the page's URL (none is personal); the phrase never does.
_URL_FIELDS = ("start", "end", "speaker", "operator_id")


def _with_defaults(args: dict) -> dict:
    """``args`` with ``start``/``end`` defaulting to the last ``CRM_CALL_SEARCH_DAYS`` days
    (``YYYY-MM-DD`` in ``CRM_TIMEZONE``)."""
    today = datetime.now(local_tz()).date()
    days = int(current_app.config["CRM_CALL_SEARCH_DAYS"])
    args.setdefault("start", (today - timedelta(days=days - 1)).isoformat())
    args.setdefault("end", today.isoformat())
    return args


def _search_page(args: dict, *, result=None, error: str | None = None, status: int = 200):
    """The search page with the form filled from ``args``."""
    args = _with_defaults(args)
    return render_template("calls/search.html", args=args, result=result, error=error,
                           operators=users.list_users("operator"), speakers=Labels(search.SPEAKERS_RU)), status


@bp.get("/calls/search")
@roles_required(*search.SEARCH_ROLES)
def call_search():
    """The empty search form (``start``, ``end``, ``speaker``, ``operator_id`` from the URL prefill it).

    The phrase is posted (:func:`call_search_submit`): what was said on a call, a name or a phone
    in a URL would land in request logs, proxies and the browser's history. A ``q`` in the URL is
    refused (400) with a message saying so, and nothing is searched."""
    args = {k: v for k, v in request.args.items() if k in _URL_FIELDS}
    if "q" in request.args:
        return _search_page(args, error=_("Фраза поиска не передаётся в адресе страницы (он попадает в журналы "
                                          "и историю браузера): введите её в форму и нажмите «Найти»."),
                            status=400)
    return _search_page(args)


@bp.post("/calls/search")
@roles_required(*search.SEARCH_ROLES)
def call_search_submit():
    """Search transcripts for a phrase posted by the form (CSRF-checked): ``q``, ``start``/``end``
    (days, ``CRM_TIMEZONE``), ``speaker``, ``operator_id``. Bad input: a Russian message and no
    scan (400). The service logs every transcript it decrypts."""
    args = {k: v for k, v in request.form.items() if k in (*_URL_FIELDS, "q")}
    args = _with_defaults(args)
    try:
        result = search.search_transcripts(**search.parse_args(args), user=current_user)
    except search.SearchError as exc:
        return _search_page(args, error=str(exc), status=400)
    return _search_page(args, result=result)
