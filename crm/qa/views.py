"""Supervisor pages: transcribed calls, scoring a call, evaluations per operator."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from crm.calls import services as calls
from crm.db import db
from crm.qa import services
from crm.qa.forms import EvaluationForm
from crm.security.permissions import roles_required
from crm.users.models import User

bp = Blueprint("qa", __name__)


def _users() -> dict[int, User]:
    return {u.id: u for u in db.session.execute(db.select(User)).scalars()}


@bp.get("/qa/calls")
@roles_required("supervisor", "admin")
def calls_list():
    return render_template("qa/calls.html", calls=calls.transcribed(limit=200), users=_users())


@bp.post("/calls/<call_id>/evaluations")
@roles_required("supervisor", "admin")
def evaluate(call_id):
    call = calls.get(call_id) or abort(404)
    card = services.ensure_default_scorecard()
    form = EvaluationForm.for_scorecard(card, formdata=request.form)
    if form.validate():
        answers = {c["code"]: getattr(form, f"c_{c['code']}").data for c in card.criteria}
        try:
            ev = services.evaluate(call, evaluator=current_user, answers=answers, comment=form.comment.data,
                                   scorecard=card)
            flash(f"Оценка сохранена: {ev.score:g} из 100.", "success")
        except services.EvaluationError as exc:
            flash(str(exc), "error")
    else:
        flash("Проверьте форму оценки.", "error")
    return redirect(url_for("calls.call_detail", call_id=call.id))


@bp.get("/qa/evaluations")
@roles_required("supervisor", "admin")
def evaluations():
    operator_id = request.args.get("operator_id", type=int)
    return render_template("qa/evaluations.html", evaluations=services.recent(limit=200, operator_id=operator_id),
                           summary=services.by_operator(), users=_users(), operator_id=operator_id)
