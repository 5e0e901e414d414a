"""The citizen's survey page (``/csat/<token>``): public, Russian, phone-sized, no account.

GET only checks the link and shows the form (a link previewer must not use it up); POST (CSRF-checked by
CSRFProtect, as on every form; rate-limited like the self-service page) records the answer through
:func:`crm.csat.services.answer`. A forged, expired or used link gets a page saying so (400 or 410) and
records nothing."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from crm.csat import services
from crm.csat.forms import SurveyForm
from crm.extensions import limiter

bp = Blueprint("csat", __name__, url_prefix="/csat")


def _refused(exc: services.SurveyError):
    return render_template("csat/refused.html", message=str(exc), code=exc.code), \
        400 if exc.code == "forged" else 410


def _yes_no(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


@bp.route("/<token>", methods=["GET", "POST"])
@limiter.limit("30 per minute", methods=["GET"])
@limiter.limit("10 per minute", methods=["POST"])
def survey(token):
    """The survey: solved, score, first time, comment."""
    try:
        found = services.check(token)
    except services.SurveyError as exc:
        return _refused(exc)
    form = SurveyForm()
    status = 200
    if form.validate_on_submit():
        try:
            ans = services.checked(solved=_yes_no(form.solved.data), score=form.score.data,
                                   first_time=_yes_no(form.first_time.data), comment=form.comment.data)
        except services.AnswerError as exc:
            getattr(form, exc.field).errors.append(str(exc))
            status = 422
        else:
            try:
                survey = services.answer(token, ans)
            except services.SurveyError as exc:
                return _refused(exc)
            return redirect(url_for("csat.thanks", reopened="1" if survey.reopened else None))
    elif request.method == "POST":
        status = 422
    return render_template("csat/survey.html", form=form, number=services.appeal_number(found)), status


@bp.get("/thanks")
def thanks():
    """After the answer: thanks (and, when «не решено» re-opened the appeal, that work goes on)."""
    return render_template("csat/thanks.html", reopened=request.args.get("reopened") == "1")
