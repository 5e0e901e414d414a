"""QA pages: the review queue and the review page (player in step with the transcript, pinned
comments, scorecard, automatic-check hints), evaluations and disputes, the scorecard editor,
sampling rules, calibration sessions and dashboards. Views parse input, call one service and
render; the services log and commit."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from crm.calls import services as calls
from crm.calls.forms import RevealForm
from crm.calls.views import render_call
from crm.db import bounded_int
from crm.i18n import Labels, lazy_gettext as _l
from crm.timeutil import local_tz, out_of_range
from crm.qa import checks, services
from crm.qa.forms import (CalibrationForm, DisputeForm, EvaluationForm, ResolveForm, SamplingRunForm, ScorecardForm,
                          answer_label)
from crm.security.permissions import roles_required
from crm.users import services as users
from crm.users.services import User

bp = Blueprint("qa", __name__)

SUPERVISORS = ("supervisor", "admin")


@bp.app_context_processor
def _qa_template_helpers():
    return {"QA_STATUS_RU": Labels(services.OPERATOR_STATUS_RU), "qa_answer_label": answer_label,
            "qa_time": _fmt_time, "qa_sections": services.sections_of, "qa_hints": services.check_results}


def _fmt_time(seconds) -> str:
    """Seconds → ``m:ss``."""
    s = int(float(seconds or 0))
    return f"{s // 60}:{s % 60:02d}"


def _users() -> dict[int, User]:
    return users.by_id()


def _notes_from_form() -> list[dict]:
    """Pinned comments posted as parallel lists ``note_at`` (m:ss or seconds) and ``note_text``."""
    out = []
    for at, text in zip(request.form.getlist("note_at"), request.form.getlist("note_text")):
        if (text or "").strip():
            out.append({"at_s": services.parse_time(at or "0"), "text": text})
    return out


# --- calls and the review queue ---------------------------------------------------------------------

@bp.get("/qa/calls")
@roles_required("supervisor", "admin")
def calls_list():
    """Calls newest first for triage: appeal number, automatic checks (✓/✗/? and the failed ones' names),
    evaluated or not (and the score); filters ``operator_id``, ``from``/``to`` (days, Moscow time),
    ``evaluated`` (``yes``/``no``), ``failed``/``unsure`` (``1``: some check failed / unsure); ``page``.
    No personal data: nothing is decrypted, so nothing is logged."""
    f = {k: request.args.get(k, "").strip() for k in ("operator_id", "from", "to", "evaluated", "failed", "unsure")}
    errors = []

    def day(name):
        if not f[name]:
            return None
        try:
            value = date.fromisoformat(f[name])
        except ValueError:
            value = None
        if value is None or out_of_range(value):
            errors.append(_("Дата «%(value)s» не распознана: укажите день в формате ГГГГ-ММ-ДД.", value=f[name]))
            f[name] = ""
            return None
        return value

    start, end = day("from"), day("to")
    operator_id = bounded_int(f["operator_id"], low=1)
    result = services.call_page(operator_id=operator_id, start=start, end=end,
                                evaluated={"yes": True, "no": False}.get(f["evaluated"]),
                                has_failed=f["failed"] == "1", has_unsure=f["unsure"] == "1",
                                page=bounded_int(request.args.get("page"), low=1, high=100_000) or 1)
    args = {k: v for k, v in f.items() if v}
    return render_template("qa/calls.html", result=result, users=_users(), f=f, args=args, errors=errors,
                           operators=users.list_users("operator"), check_labels=Labels(checks.LABELS))


@bp.get("/qa/queue")
@roles_required("supervisor", "admin")
def queue():
    """The signed-in supervisor's review queue (an admin sees every pending item)."""
    items = services.queue_for(current_user)
    # an empty queue says how many transcribed calls the sampling has not queued (its periodic run may
    # not have come yet) beside the button that runs it now
    unqueued = None if items else services.unqueued_count()
    return render_template("qa/queue.html", items=items, users=_users(), form=SamplingRunForm(), unqueued=unqueued,
                           sampling_every_min=max(1, int(current_app.config["CRM_QA_SAMPLING_EVERY_S"]) // 60),
                           calls={it.call_id: calls.get(it.call_id) for it in items}, rule_kinds=Labels(services.RULE_KINDS))


@bp.post("/qa/queue/sample")
@roles_required("supervisor", "admin")
def queue_sample():
    """Run the sampling rules for the periods containing the given day (default today)."""
    form = SamplingRunForm()
    if not form.validate():
        flash(_("Проверьте дату."), "error")
        return redirect(url_for("qa.queue"))
    added = services.run_sampling(form.day.data)
    total = sum(added.values())
    flash(_("В очередь добавлено звонков: %(total)s.", total=total) if total else _("Новых звонков для проверки нет."),
          "success")
    return redirect(url_for("qa.queue"))


@bp.get("/qa/review/<call_id>")
@roles_required("supervisor", "admin")
def review(call_id):
    """The review page; ``?session=<id>``: scoring blind in a calibration session (the call's
    other evaluations are not shown)."""
    call = calls.get(call_id) or abort(404)
    session = None
    if request.args.get("session"):
        session = services.get_session(request.args.get("session", type=int) or 0) or abort(404)
        if session.call_id != call.id or current_user.id not in (session.participant_ids or []):
            abort(403)
    return _render_review(call, session)


def _render_review(call, session=None, form=None, status: int = 200):
    """The review page; ``form``: a scorecard form sent back with its answers and errors (422).
    A call that does not pass the QA-consent gate is refused (403, nothing decrypted); an erased
    citizen's call shows that its data were destroyed."""
    if not calls.is_erased(call):
        services.require_qa_consent(call)
    data = calls.view(call, pieces=True)
    if session is not None:
        card = services.get_scorecard(session.scorecard_id)
        own = services.own_score(session, current_user.id)
        form = form or EvaluationForm.for_scorecard(card, data=own.answers if own else None)
        evaluations = []
    else:
        card = services.ensure_default_scorecard()
        form = form or EvaluationForm.for_scorecard(card)
        evaluations = services.for_call(call.id)
    pending = services.queue_for(current_user)
    ids = [it.call_id for it in pending]
    operator = users.get(call.operator_id)
    return render_template(
        "qa/review.html", call=data, call_obj=call, scorecard=card, sections=services.sections_of(card), form=form,
        evaluations=evaluations, operator=operator, hints=services.check_results(call.id), users=_users(),
        next_call=services.next_after(ids, call.id), position=(ids.index(call.id) + 1) if call.id in ids else None,
        queue_size=len(ids), queue_item=services.queue_item_for_call(call.id), rule_kinds=Labels(services.RULE_KINDS),
        session=session, reveal_form=RevealForm.for_call(call, formdata=None),
        notes=[n for ev in evaluations for n in (ev.notes or [])]), status


@bp.post("/calls/<call_id>/evaluations")
@roles_required("supervisor", "admin")
def evaluate(call_id):
    """Save an evaluation from the call page or the review page (``next=review``: go on to the
    next call in the queue)."""
    call = calls.get(call_id) or abort(404)
    if not calls.is_erased(call):  # (an erased call is refused by the service: 410)
        services.require_qa_consent(call)  # 403 before any form is shown again with the call
    card = services.ensure_default_scorecard()
    form = EvaluationForm.for_scorecard(card, formdata=request.form)
    from_review = request.form.get("next") == "review"

    def again(message: str, status: int = 422):
        """Back to the page the form came from, with the answers given and the errors (422): a
        half-filled scorecard is not lost."""
        flash(message, "error")
        return (_render_review(call, form=form, status=status) if from_review
                else render_call(call, status, form=form))

    if not form.validate():
        return again(form.error_message())
    try:
        ev = services.evaluate(call, evaluator=current_user, answers=form.answers(card), comment=form.comment.data,
                               scorecard=card, notes=_notes_from_form())
    except services.EvaluationError as exc:
        return again(_("Оценка не сохранена: %(error)s.", error=exc), 410 if exc.code == "erased" else 422)
    flash(_("Оценка сохранена: %(score)s из 100.", score=f"{ev.score:g}"), "success")
    # POST/redirect/GET: a reload does not send the scorecard again
    if from_review:
        nxt = services.next_in_queue(current_user, call.id)
        return redirect(url_for("qa.review", call_id=nxt) if nxt else url_for("qa.queue"))
    return redirect(url_for("calls.call_detail", call_id=call.id, saved=ev.id, _anchor=f"evaluation-{ev.id}"))


# --- evaluations, the operator's answer, disputes ----------------------------------------------------

def _evaluation_or_404(evaluation_id):
    return services.get_for(current_user, evaluation_id)


@bp.get("/qa/evaluations")
@roles_required("supervisor", "admin")
def evaluations():
    operator_id = request.args.get("operator_id", type=int)
    return render_template("qa/evaluations.html", evaluations=services.recent(limit=200, operator_id=operator_id),
                           summary=services.by_operator(), users=_users(), operator_id=operator_id)


@bp.get("/qa/my")
@roles_required("operator")
def my_evaluations():
    """The operator's own evaluations with what is awaiting their answer."""
    evs = services.recent(limit=200, operator_id=current_user.id)
    return render_template("qa/my.html", evaluations=evs, users=_users(), days=services.dispute_days(),
                           can_respond={ev.id: services.can_respond(ev, current_user) for ev in evs})


@bp.get("/qa/evaluations/<evaluation_id>")
@roles_required("supervisor", "admin", "operator")
def evaluation_detail(evaluation_id):
    """One evaluation: answers by section, comments pinned to moments, the dispute and its history."""
    ev = _evaluation_or_404(evaluation_id)
    data = services.view(ev)
    card = data["scorecard"]
    rform = ResolveForm()
    change_form = EvaluationForm.for_scorecard(card, data=ev.answers) if ev.operator_status == "disputed" else None
    return render_template("qa/evaluation.html", ev=ev, data=data, users=_users(), dform=DisputeForm(), rform=rform,
                           change_form=change_form, can_respond=services.can_respond(ev, current_user),
                           call=calls.get(ev.call_id))


@bp.post("/qa/evaluations/<evaluation_id>/acknowledge")
@roles_required("operator")
def evaluation_acknowledge(evaluation_id):
    ev = _evaluation_or_404(evaluation_id)
    try:
        services.acknowledge(ev, current_user)
        flash(_("Оценка принята."), "success")
    except services.EvaluationError as exc:
        flash(str(exc), "error")
    return redirect(url_for("qa.evaluation_detail", evaluation_id=ev.id))


@bp.post("/qa/evaluations/<evaluation_id>/dispute")
@roles_required("operator")
def evaluation_dispute(evaluation_id):
    ev = _evaluation_or_404(evaluation_id)
    form = DisputeForm()
    if not form.validate():
        flash("; ".join(str(e) for errs in form.errors.values() for e in errs) or _("Проверьте форму."), "error")
        return redirect(url_for("qa.evaluation_detail", evaluation_id=ev.id))
    try:
        services.dispute(ev, current_user, form.reason.data)
        flash(_("Оценка оспорена: супервизор рассмотрит ваш ответ."), "success")
    except services.EvaluationError as exc:
        flash(str(exc), "error")
    return redirect(url_for("qa.evaluation_detail", evaluation_id=ev.id))


@bp.post("/qa/evaluations/<evaluation_id>/resolve")
@roles_required("supervisor", "admin")
def evaluation_resolve(evaluation_id):
    ev = _evaluation_or_404(evaluation_id)
    form = ResolveForm()
    try:
        if not form.validate():
            raise services.EvaluationError(_l("проверьте форму решения"))
        answers = None
        if form.outcome.data == "changed":
            card = services.get_scorecard(ev.scorecard_id)
            answers = {c["code"]: request.form.get(f"c_{c['code']}") for c in services.criteria_of(card)}
        services.resolve(ev, current_user, outcome=form.outcome.data, comment=form.comment.data, answers=answers)
        flash(_("Спор разрешён: оценка изменена.") if form.outcome.data == "changed"
              else _("Спор разрешён: оценка оставлена."), "success")
    except services.EvaluationError as exc:
        flash(str(exc), "error")
    return redirect(url_for("qa.evaluation_detail", evaluation_id=ev.id))


@bp.get("/qa/disputes")
@roles_required("supervisor", "admin")
def disputes():
    return render_template("qa/disputes.html", evaluations=services.disputes(), users=_users())


# --- scorecards and sampling rules ------------------------------------------------------------------

def _scorecard_from_form() -> tuple[list[dict], list[dict]]:
    """Sections (parallel lists ``section_code``/``section_title``) and criteria (``crit_*`` lists)
    posted by the editor. A criterion names its section by the row index of the section list;
    blank rows are dropped and new sections get the next free code ``s<n>``."""
    posted = list(zip(request.form.getlist("section_code"), request.form.getlist("section_title")))
    taken = {code for code, _ in posted if code}
    sections, used, index_to_code = [], set(), {}
    for i, (code, title) in enumerate(posted):
        if not (title or "").strip():
            continue
        if not code or code in used:
            n = 1
            while f"s{n}" in taken or f"s{n}" in used:
                n += 1
            code = f"s{n}"
        used.add(code)
        index_to_code[str(i)] = code
        sections.append({"code": code, "title": title.strip()})
    fields = ("code", "label", "section", "kind", "weight", "scale_max", "pass_min", "critical")
    cols = {f: request.form.getlist(f"crit_{f}") for f in fields}
    criteria = []
    for i in range(max((len(v) for v in cols.values()), default=0)):
        row = {f: (cols[f][i] if i < len(cols[f]) else "") for f in fields}
        if not row["code"].strip() and not row["label"].strip():
            continue
        section = index_to_code.get(row["section"], sections[0]["code"] if sections else "main")
        criteria.append({"code": row["code"].strip(), "label": row["label"], "section": section,
                         "kind": row["kind"] or "binary", "weight": row["weight"] or None,
                         "scale_max": row["scale_max"] or None, "pass_min": row["pass_min"] or None,
                         "critical": row["critical"] == "yes"})
    return sections, criteria


@bp.route("/qa/scorecard", methods=["GET", "POST"])
@roles_required("supervisor", "admin")
def scorecard_edit():
    """Edit the scorecard: saving makes a new version; evaluations keep the one they were scored on."""
    card = services.ensure_default_scorecard()
    form = ScorecardForm(data={"name": card.name} if request.method == "GET" else None)
    draft = None
    if request.method == "POST":
        sections, criteria = _scorecard_from_form()
        draft = {"sections": sections, "criteria": criteria}
        if form.validate():
            try:
                new, created = services.save_scorecard(name=form.name.data, sections=sections, criteria=criteria,
                                                       user=current_user)
                flash(_("Сохранена версия %(version)s формы.", version=new.version) if created else _("Изменений нет."),
                      "success")
                return redirect(url_for("qa.scorecard_edit"))
            except services.EvaluationError as exc:
                flash(str(exc), "error")
        else:
            flash(_("Проверьте название формы."), "error")
    sections = draft["sections"] if draft else (card.sections or [{"code": "main", "title": "Критерии"}])
    criteria = draft["criteria"] if draft else services.criteria_of(card)
    return render_template("qa/scorecard.html", card=card, form=form, sections=sections, criteria=criteria,
                           versions=services.versions(card.family), users=_users(),
                           kinds=Labels(services.KINDS)), (400 if draft else 200)


@bp.route("/qa/sampling", methods=["GET", "POST"])
@roles_required("supervisor", "admin")
def sampling_rules():
    """Sampling rules: period, count per operator, which automatic checks flag a call."""
    rules = services.ensure_rules()
    if request.method == "POST":
        form = SamplingRunForm()  # CSRF only
        if form.validate():
            try:
                services.update_rule(request.form.get("rule_id", type=int) or 0,
                                     active=request.form.get("active") == "yes", period=request.form.get("period", ""),
                                     n=request.form.get("n", type=int), codes=request.form.getlist("codes"))
                flash(_("Правило сохранено."), "success")
            except services.EvaluationError as exc:
                flash(str(exc), "error")
        return redirect(url_for("qa.sampling_rules"))
    return render_template("qa/sampling.html", rules=rules, form=SamplingRunForm(), periods=Labels(services.PERIODS),
                           rule_kinds=Labels(services.RULE_KINDS), check_labels=Labels(checks.LABELS), check_codes=checks.CODES)


# --- calibration -------------------------------------------------------------------------------------

def _staff() -> list[User]:
    return users.active_with_roles(*SUPERVISORS)


@bp.route("/qa/calibration", methods=["GET", "POST"])
@roles_required("supervisor", "admin")
def calibration_list():
    """Calibration sessions; ``?call_id=`` (from the review page) opens the form for a new one."""
    form = CalibrationForm()
    call_id = request.values.get("call_id")
    if request.method == "POST":
        call = calls.get(call_id or "") or abort(404)
        if form.validate():
            try:
                session = services.create_session(
                    call, creator=current_user, title=form.title.data or "",
                    participant_ids=[int(x) for x in request.form.getlist("participants") if x.isdigit()],
                    reference_id=request.form.get("reference_id", type=int) or 0)
                flash(_("Калибровка начата: участники оценивают звонок, не видя ответов друг друга."), "success")
                return redirect(url_for("qa.calibration_detail", session_id=session.id))
            except services.EvaluationError as exc:
                flash(str(exc), "error")
        return redirect(url_for("qa.calibration_list", call_id=call.id))
    return render_template("qa/calibration_list.html", sessions=services.sessions(), users=_users(), form=form,
                           call=calls.get(call_id) if call_id else None, staff=_staff())


@bp.get("/qa/calibration/<int:session_id>")
@roles_required("supervisor", "admin")
def calibration_detail(session_id):
    """Who has scored (not what) while open; the spread report once closed."""
    session = services.get_session(session_id) or abort(404)
    scores = services.session_scores(session)
    report = services.calibration_report(session) if session.status == "closed" else None
    card = services.get_scorecard(session.scorecard_id)
    return render_template("qa/calibration.html", session=session, scored={s.evaluator_id for s in scores},
                           report=report, users=_users(), form=CalibrationForm(), card=card,
                           criteria={c["code"]: c for c in services.criteria_of(card)},
                           own=services.own_score(session, current_user.id))


@bp.post("/qa/calibration/<int:session_id>/score")
@roles_required("supervisor", "admin")
def calibration_score(session_id):
    session = services.get_session(session_id) or abort(404)
    card = services.get_scorecard(session.scorecard_id)
    form = EvaluationForm.for_scorecard(card, formdata=request.form)
    if not form.validate():
        flash(form.error_message(_("Ответы не сохранены")), "error")
        if session.status == "open" and current_user.id in (session.participant_ids or []):
            return _render_review(calls.get(session.call_id), session, form=form, status=422)
        return redirect(url_for("qa.review", call_id=session.call_id, session=session.id))
    try:
        row = services.submit_calibration(session, current_user, form.answers(card))
        flash(_("Ответы калибровки сохранены: %(score)s из 100.", score=f"{row.score:g}"), "success")
    except services.EvaluationError as exc:
        flash(str(exc), "error")
    return redirect(url_for("qa.calibration_detail", session_id=session.id))


@bp.post("/qa/calibration/<int:session_id>/close")
@roles_required("supervisor", "admin")
def calibration_close(session_id):
    session = services.get_session(session_id) or abort(404)
    form = CalibrationForm()
    try:
        if not form.validate():
            raise services.EvaluationError(_l("форма устарела, обновите страницу"))
        services.close_session(session, current_user)
        flash(_("Калибровка завершена."), "success")
    except services.EvaluationError as exc:
        flash(str(exc), "error")
    return redirect(url_for("qa.calibration_detail", session_id=session.id))


# --- dashboards --------------------------------------------------------------------------------------

def _day_arg(name: str, default: date) -> date:
    try:
        day = date.fromisoformat(request.args.get(name) or default.isoformat())
    except ValueError:
        return default
    return default if out_of_range(day) else day  # year 1 overflowed the UTC conversion: 500


@bp.get("/qa/dashboard")
@roles_required("supervisor", "admin")
def dashboard():
    """Average score by operator, criterion and week, the distribution and the most-failed
    criteria for a period of days in ``CRM_TIMEZONE`` (default the last 30 days)."""
    tz = local_tz()
    today = datetime.now(tz).date()
    first, last = _day_arg("from", today - timedelta(days=29)), _day_arg("to", today)
    if first > last:
        first, last = last, first
    operator_id = bounded_int(request.args.get("operator_id"), low=1)  # unknown or out of range: no filter
    start = datetime.combine(first, time(0), tz)
    end = datetime.combine(last + timedelta(days=1), time(0), tz)
    data = services.dashboard(start, end, operator_id=operator_id)
    users = _users()
    operators = [u for u in users.values() if u.role == "operator"]
    return render_template("qa/dashboard.html", d=data, users=users, operators=operators, first=first, last=last,
                           operator_id=operator_id)
