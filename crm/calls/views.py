"""Call page (audio player beside the transcript, scorecard) and the decrypted audio stream."""
from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from crm.calls import services
from crm.db import db
from crm.qa import services as qa
from crm.qa.forms import EvaluationForm
from crm.security.permissions import roles_required

bp = Blueprint("calls", __name__)


@bp.get("/calls/<call_id>")
@roles_required("supervisor", "admin", "operator")
def call_detail(call_id):
    call = services.get(call_id) or abort(404)
    if current_user.role == "operator" and call.operator_id != current_user.id:
        abort(403)
    data = services.view(call)
    card = qa.ensure_default_scorecard()
    form = EvaluationForm.for_scorecard(card)
    from crm.users.models import User

    operator = db.session.get(User, call.operator_id) if call.operator_id else None
    return render_template("calls/detail.html", call=data, scorecard=card, form=form,
                           evaluations=qa.for_call(call.id), operator=operator)


@bp.get("/calls/<call_id>/audio")
@roles_required("supervisor", "admin", "operator")
def call_audio(call_id):
    call = services.get(call_id) or abort(404)
    if current_user.role == "operator" and call.operator_id != current_user.id:
        abort(403)
    resp = Response(services.stream_recording(call), mimetype="audio/wav" if (call.audio_format or "").startswith("wav") else "application/octet-stream")
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/calls/<call_id>/retranscribe")
@roles_required("supervisor", "admin")
def call_retranscribe(call_id):
    from flask_wtf.csrf import validate_csrf

    validate_csrf(request.form.get("csrf_token"))
    call = services.get(call_id) or abort(404)
    call.status = "queued"
    call.progress = 0.0
    db.session.commit()
    services.enqueue_transcription(call)
    flash("Запись поставлена на повторную расшифровку.", "success")
    return redirect(url_for("calls.call_detail", call_id=call.id))
