"""The data-protection officer's pages (blueprint ``dpo``): the access log, the per-citizen access
report (page, CSV, printable document), alerts about unusual access; the register of processing
purposes (page, CSV, printable record of processing), data subject requests with their clocks, the
access export (JSON and a printable document), a citizen's consent history, erasure with four-eyes
approval, destruction acts, retention runs, the SMS outbox.

The DPO reads logs and consent records, never appeal contents; the only personal values shown are a
citizen's name and masked phone (and, in an access export, what the citizen may see), and showing
them is logged. Views parse input, call one service and render; services check roles again and
write the log."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, time as dtime, timedelta
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from crm.citizens import services as citizens
from crm.citizens.forms import RectifyForm
from crm.consent import retention, rights, selfservice, sms
from crm.consent import services as consent
from crm.consent.forms import (AnswerForm, ErasureForm, ExtendForm, PurposeForm, RequestForm, RetentionForm,
                               VerificationForm, WithdrawForm)
from crm.db import utcnow
from crm.dpo import alerts, services
from crm.errors import InvalidInput
from crm.i18n import N_, Labels, translate
from crm.security import audit, checkpoints
from crm.security.permissions import ROLE_NAMES_RU, PermissionDenied, roles_required
from crm.security.redirects import local_target
from crm.timeutil import day_start, local_date, local_tz, parse_day
from crm.users.sessions import fresh_required, require_fresh

bp = Blueprint("dpo", __name__)
#: The citizen's side of an access request: the self-service download (no staff account; the session
#: of crm.consent.views.public_bp, begun with an SMS code).
selfservice_bp = Blueprint("dpo_selfservice", __name__, url_prefix="/my")
PAGE = 100
#: Every DPO page is for the DPO alone: the DPO audits the administrators too (design.md).
DPO = ("dpo",)


@bp.errorhandler(PermissionDenied)
def _denied(_exc):
    abort(403)


class DpoPhoneSearchForm(FlaskForm):
    """The DPO's search by phone: a POST with CSRF, so the number stays out of URLs."""

    phone = StringField(_l("Телефон заявителя"), validators=[DataRequired(message=_l("Введите номер телефона")),
                                                             Length(max=40)])


def _unknown_citizen(citizen_id: str):
    """The lookup page with a Russian error instead of a report (and its CSV and print links)."""
    return _lookup_page(citizen_id=citizen_id, status=404,
                        id_error=_("Заявитель с id «%(citizen_id)s» не найден. Проверьте id или найдите "
                                   "заявителя по телефону.", citizen_id=citizen_id[:40]))


def _parse_period() -> tuple[datetime | None, datetime | None, str, str, str | None]:
    """``from``/``to`` query values (inclusive local days) as UTC bounds, the raw values, and a Russian
    error (an unparseable date, or a start after the end) or None."""
    first, last = request.args.get("from", "").strip(), request.args.get("to", "").strip()
    start = end = None
    try:
        if first:
            start = day_start(parse_day(first, "from"))
        if last:
            end = day_start(parse_day(last, "to") + timedelta(days=1))
    except InvalidInput as exc:
        return None, None, first, last, str(exc)
    if start is not None and end is not None and start >= end:
        return None, None, first, last, _("Дата начала периода (%(first)s) позже даты окончания (%(last)s): "
                                           "исправьте период.", first=first, last=last)
    return start, end, first, last, None


def _period() -> tuple[datetime | None, datetime | None, str, str]:
    """As :func:`_parse_period`, for the access log: a bad period is flashed and ignored."""
    start, end, first, last, error = _parse_period()
    if error:
        flash(error, "error")
        return None, None, "", ""
    return start, end, first, last


@bp.get("/dpo/access-log")
@roles_required("dpo")
def access_log():
    """The access log, newest first; filters: citizen, staff member, period, action, purpose; keyset paging.
    Each code is shown by its Russian label with the code beside it (the filters take codes)."""
    f = {k: request.args.get(k, "").strip() for k in ("citizen_id", "actor", "action", "purpose")}
    start, end, f["from"], f["to"] = _period()
    rows, more = services.search(**{k: f[k] for k in ("citizen_id", "actor", "action", "purpose")}, start=start,
                              end=end, before=request.args.get("before", type=int), limit=PAGE)
    purposes = consent.purpose_names()
    staff = services.staff()
    head_seq, head_hash = audit.head()
    return render_template("dpo/access_log.html", rows=_log_rows(rows, staff, purposes), f=f, more=more,
                           next_before=rows[-1].seq if more else None, actor_choices=_actor_choices(staff),
                           action_choices=_action_choices(), purpose_choices=[("", list(purposes.items()))],
                           actor_label=audit.actor_label, action_label=audit.action_label,
                           purpose_label=lambda code: purposes.get(code, code),
                           head_seq=head_seq, head_hash=head_hash,
                           open_alerts=len(alerts.listing("open", limit=1000)), checkpoint=_last_checkpoint(),
                           retention_days=current_app.config["CRM_AUDIT_RETENTION_DAYS"])


#: Groups of the action filter; labelled actions in none of them come under «Прочее».
ACTION_GROUPS = ((N_("Чтение персональных данных"), audit.READ_ACTIONS), (N_("Изменение данных"), audit.CHANGE_ACTIONS),
                 (N_("Вход и учётные записи"), audit.AUTH_ACTIONS),
                 (N_("Безопасность, ключи, журнал"), audit.SECURITY_ACTIONS))
#: Actors that are neither staff nor jobs: the citizens' self-service pages (crm.consent.selfservice)
#: requests from no one signed in (audit.current_actor) and the PBX's webhook without a named source.
OTHER_ACTORS = ("citizen:selfservice", "anonymous", "pbx:default")
#: Jobs logged as ``job:<name>:<detail>`` (``crm audit attest``): no exact login to filter by.
_SUFFIXED_JOBS = frozenset({"attest"})

Choices = list[tuple[str, list[tuple[str, str]]]]  # [(group label or "", [(code, label), ...]), ...]


def _action_choices() -> Choices:
    """The action filter's options by group, each labelled action once."""
    groups, seen = [], set()
    for title, codes in ACTION_GROUPS:
        groups.append((_(title), [(code, audit.action_label(code)) for code in codes]))
        seen.update(codes)
    rest = [(code, audit.action_label(code)) for code in audit.ACTION_LABELS if code not in seen]
    return groups + [(_("Прочее"), rest)]


def _actor_choices(staff: dict) -> Choices:
    """The staff-member filter's options: staff by login (name, login, role), then the system jobs
    (``job:<name>``) and the other non-staff actors, by their Russian labels."""
    people = [(u.username, f"{u.display_name}, {audit.role_label(u.role)}") for u in staff.values()]
    jobs = [(f"job:{job}", audit.actor_label(f"job:{job}")) for job in audit.SYSTEM_ACTOR_LABELS
            if job not in _SUFFIXED_JOBS]
    others = [(actor, audit.actor_label(actor)) for actor in OTHER_ACTORS]
    return [(_("Сотрудники"), people), (_("Система"), jobs), (_("Без учётной записи"), others)]


def _log_rows(rows, staff: dict, purposes: dict[str, str]) -> list[dict]:
    """Access-log entries for the viewer: each code (actor, role, action, fields, purpose, outcome)
    beside its Russian label, worded as in :func:`crm.dpo.services.access_report`; a code with no
    label is its own label; ``detail`` as recorded («identifiers shown unmasked: phone; no purpose
    given (API default)»), shown as ``detail_label`` («показаны без маски: телефон; цель не указана (по
    умолчанию API)», :func:`crm.security.audit.detail_label`) with the stored text as its title,
    escaped by the template."""
    shown = []
    for r in rows:
        shown.append({
            **audit.entry_labels(r, staff.get(r.actor_id), purposes),
            "seq": r.seq, "at": r.at, "citizen_id": r.citizen_id, "appeal_id": r.appeal_id, "call_id": r.call_id,
            "ip": r.ip, "actor": r.actor, "role": r.actor_role, "action": r.action,
            "fields": ",".join(audit.entry_fields(r)), "purpose": r.purpose or "", "outcome": r.outcome,
            "detail": r.detail or ""})
    return shown


def _last_checkpoint() -> dict | None:
    return checkpoints.latest(Path(current_app.config["CRM_AUDIT_CHECKPOINT_DIR"]))


@bp.get("/dpo/citizens")
@roles_required("dpo")
def citizen_lookup():
    """The lookup page; ``?citizen_id=`` opens that citizen's access report (an id, never a phone:
    the search by phone is a POST, :func:`citizen_search`)."""
    citizen_id = request.args.get("citizen_id", "").strip()
    if citizen_id:
        if not services.known_citizen(citizen_id):
            return _unknown_citizen(citizen_id)
        return redirect(url_for("dpo.access_report", citizen_id=citizen_id))
    return _lookup_page()


@bp.post("/dpo/citizens")
@roles_required("dpo")
def citizen_search():
    """Find a citizen by phone for a data subject request; the lookup is logged like any other. The
    results are rendered in this response, so the number is never in a URL."""
    form = DpoPhoneSearchForm()
    if not form.validate_on_submit():
        return _lookup_page(form, status=422)
    found, error = [], None
    try:
        found = [{"id": c.id, "full_name": c.full_name, "erased": c.erased_at is not None}
                 for c in citizens.find_by_phone(form.phone.data.strip(), purpose=audit.REPORT_PURPOSE)]
    except citizens.CitizenError as exc:
        error = str(exc)
    return _lookup_page(form, found=found, error=error, searched=True, status=422 if error else 200)


def _lookup_page(form=None, *, found=(), error=None, searched=False, citizen_id="", id_error=None, status=200):
    return render_template("dpo/citizen_lookup.html", form=form or DpoPhoneSearchForm(formdata=None),
                           found=list(found), error=error, searched=searched, citizen_id=citizen_id,
                           id_error=id_error), status


CSV_COLUMNS = [("seq", "№ записи"), ("at", "Время (МСК)"), ("actor_name", "Кто"), ("actor", "Логин"),
               ("actor_role", "Роль"), ("action", "Действие (код)"), ("action_label", "Действие"),
               ("fields_label", "Категории данных"), ("purpose", "Цель (код)"), ("purpose_label", "Цель"),
               ("appeal_number", "Обращение"), ("call_id", "Звонок"), ("ip", "IP"), ("outcome", "Итог"),
               ("detail_label", "Подробности"), ("detail", "Подробности (как записано)"), ("hash", "Хеш записи")]
# «Подробности»: the detail's known phrases in Russian (crm.security.audit.detail_label); «как записано»: the
# stored text, which the entry's hash covers


@bp.get("/dpo/citizens/<citizen_id>/access-report")
@roles_required("dpo")
def access_report(citizen_id):
    """Who saw this person's data and why: a page, ``?format=csv``, or the printable document
    (``/print``). Each report is logged (``audit.report``)."""
    fmt = request.args.get("format", "html")
    if fmt not in ("html", "csv"):
        abort(400)
    if fmt == "csv" and (again := require_fresh()):  # an export: the password again (issue 17)
        return again
    return _report(citizen_id, fmt)


@bp.get("/dpo/citizens/<citizen_id>/access-report/print")
@roles_required("dpo")
@fresh_required
def access_report_print(citizen_id):
    """The access report as a printable document (print stylesheet; the browser prints or saves PDF)."""
    return _report(citizen_id, "print")


def _report(citizen_id: str, fmt: str):
    if not services.known_citizen(citizen_id):  # an unknown id: no report, no CSV or print links for it
        if fmt == "html":
            return _unknown_citizen(citizen_id)
        abort(404)
    start, end, first, last, period_error = _parse_period()
    if period_error:  # not a silently empty (or silently unfiltered) report
        if fmt != "html":
            return render_template("error.html", status=400, message=period_error), 400
        return render_template("dpo/access_report.html", citizen_id=citizen_id, report=None, first=first,
                               last=last, period_error=period_error, now=utcnow()), 400
    report = services.access_report(citizen_id, start=start, end=end, fmt=fmt)
    moscow = current_app.jinja_env.filters["moscow"]
    if fmt == "csv":
        buf = io.StringIO()
        buf.write("\ufeff")  # BOM: spreadsheet programs then read UTF-8 Cyrillic correctly
        writer = csv.writer(buf)
        writer.writerow([title for _, title in CSV_COLUMNS])
        for e in report["entries"]:
            row = dict(e, at=moscow(e["at"], seconds=True), actor_role=ROLE_NAMES_RU.get(e["actor_role"], e["actor_role"]))
            writer.writerow(["" if row.get(k) is None else row[k] for k, _ in CSV_COLUMNS])
        name = f"access-report-{citizen_id[:8]}.csv"
        return Response(buf.getvalue(), mimetype="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})
    template = "dpo/access_report_print.html" if fmt == "print" else "dpo/access_report.html"
    return render_template(template, citizen_id=citizen_id, report=report, first=first, last=last, now=utcnow())


@bp.get("/dpo/alerts")
@roles_required("dpo")
def alert_list():
    """Alerts about unusual access; ``?status=open|acknowledged|all``, ``?rule=``."""
    status = request.args.get("status", "open")
    if status not in ("open", "acknowledged", "all"):
        status = "open"
    rule = request.args.get("rule") or None
    return render_template("dpo/alerts.html", alerts=alerts.listing(status, rule if rule in alerts.RULES else None),
                           status=status, rule=rule, rules=alerts.RULES, staff=services.staff())


@bp.post("/dpo/alerts/scan")
@roles_required("dpo")
def alert_scan():
    """Run the rules over the log now (also done hourly by the worker)."""
    counts = alerts.scan(actor=audit.current_actor())
    flash(_("Проверка выполнена: новых оповещений %(new)s, обновлено %(updated)s.", new=counts["new"],
            updated=counts["updated"]), "success")
    return redirect(url_for("dpo.alert_list"))


@bp.post("/dpo/alerts/<int:alert_id>/acknowledge")
@roles_required("dpo")
def alert_acknowledge(alert_id):
    """Mark an alert reviewed, with a comment; logged as ``audit.alert_ack``."""
    alert = alerts.get(alert_id) or abort(404)
    try:
        alerts.acknowledge(alert, user=current_user, comment=request.form.get("comment"))
    except InvalidInput as exc:
        flash(str(exc), "error")
    else:
        flash(_("Оповещение отмечено как рассмотренное."), "success")
    return redirect(local_target(request.form.get("next"), url_for("dpo.alert_list")))


# --- the register of purposes ---------------------------------------------------------------------

REGISTER_COLUMNS = [("code", "Код"), ("name_ru", "Цель обработки"), ("legal_basis", "Правовое основание"),
                    ("requires_consent", "Нужно согласие"), ("subjects", "Категории субъектов"),
                    ("data_categories", "Категории данных"), ("actions", "Действия"),
                    ("processing_method", "Способ обработки"), ("recipients", "Передача"),
                    ("retention_days", "Срок хранения, дн."), ("retention_basis", "Основание срока"),
                    ("retention_action", "По истечении срока")]


def _register_value(p, key):
    value = getattr(p, key)
    if key == "requires_consent":
        return "да" if value else "нет"
    if key == "retention_action":
        return {"erase": "уничтожение", "deidentify": "обезличивание"}.get(value, value)
    return value


@bp.get("/dpo/purposes")
@roles_required(*DPO)
def purposes():
    """The register of processing purposes; ``?format=csv`` or ``?format=print`` (the organisation's
    record of processing, ст. 18.1 and ст. 22 ч. 3 152-ФЗ)."""
    fmt = request.args.get("format", "html")
    rows = consent.purposes()
    name, address = consent.controller()
    if fmt == "csv":
        buf = io.StringIO()
        buf.write("\ufeff")  # spreadsheet programs then read UTF-8 Cyrillic correctly
        writer = csv.writer(buf)
        writer.writerow([title for _, title in REGISTER_COLUMNS])
        for p in rows:
            writer.writerow([_register_value(p, k) for k, _ in REGISTER_COLUMNS])
        return Response(buf.getvalue(), mimetype="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="processing-register.csv"',
                                 "Cache-Control": "no-store"})
    if fmt not in ("html", "print"):
        abort(400)
    template = "dpo/purposes_print.html" if fmt == "print" else "dpo/purposes.html"
    return render_template(template, purposes=rows, columns=REGISTER_COLUMNS, value=_register_value,
                           controller=(name, address), configured=consent.controller_configured(),
                           staff=services.staff(), now=utcnow(), proposals=consent.pending_proposals(),
                           decide_form=FlaskForm())


@bp.post("/dpo/purposes/proposals/<proposal_id>/<decision>")
@roles_required("dpo")
def purpose_proposal(proposal_id, decision):
    """Approve (a DPO other than the proposer) or reject a pending register change (two-person rule,
    :func:`crm.consent.services.approve_proposal`)."""
    if decision not in ("approve", "reject") or not FlaskForm().validate_on_submit():
        abort(400)
    try:
        if decision == "approve":
            consent.approve_proposal(proposal_id, user=current_user)
            flash(_("Изменение реестра подтверждено."), "success")
        else:
            consent.reject_proposal(proposal_id, user=current_user)
            flash(_("Предложение отклонено: реестр не изменён."), "success")
    except consent.ConsentError as exc:
        flash(str(exc), "error")
    return redirect(url_for("dpo.purposes"))


@bp.route("/dpo/purposes/<code>/edit", methods=["GET", "POST"])
@roles_required("dpo")
def purpose_edit(code):
    purpose = consent.get_purpose(code) or abort(404)
    form = PurposeForm(obj=purpose)
    status = 200
    if form.validate_on_submit():
        values = {k: getattr(form, k).data for k in consent.EDITABLE}
        pending_before = consent.proposed(purpose.code) is not None
        try:
            changed = consent.update_purpose(purpose, values, user=current_user)
        except consent.ConsentError as exc:
            getattr(form, exc.field, form.name_ru).errors.append(str(exc))
            status = 422
        else:
            proposal = consent.proposed(purpose.code)
            if proposal is not None and not pending_before:
                flash(_("Отключение согласия предложено: оно вступит в силу, когда его подтвердит другой "
                        "ответственный за обработку ПДн."), "info")
            if changed or proposal is None or pending_before:
                flash(_("Реестр изменён.") if changed else _("Изменений нет."), "success")
            return redirect(url_for("dpo.purposes"))
    elif request.method == "POST":
        status = 422
    return render_template("dpo/purpose_edit.html", form=form, purpose=purpose), status


# --- data subject requests ------------------------------------------------------------------------

def _received_at(day) -> datetime | None:
    """A date picked in the form as an aware datetime: now for today, else noon Moscow time."""
    if day is None or day == local_date(utcnow()):
        return None
    return datetime.combine(day, dtime(12, 0), local_tz())


@bp.route("/dpo/requests", methods=["GET", "POST"])
@roles_required(*DPO)
def requests():
    """Requests by state (``?status=open|overdue|closed|all``) with their deadlines; the form
    registers a new access or stop-processing request."""
    form = RequestForm()
    form.purpose.choices = [("", _("все цели"))] + [(p.code, p.name_ru) for p in consent.purposes()]
    status_code = 200
    if form.validate_on_submit():
        try:
            purpose = (form.purpose.data or None) if form.type.data == "stop_processing" else None
            req = rights.register(form.citizen_id.data.strip(), form.type.data, channel=form.channel.data,
                                  purpose=purpose, note=form.note.data,
                                  received_at=_received_at(form.received_on.data), user_id=current_user.id)
        except rights.RequestError as exc:
            field = getattr(form, exc.field, None) if exc.field else None
            (field if field is not None and hasattr(field, "errors") else form.citizen_id).errors.append(str(exc))
            status_code = 422
        else:
            flash(_("Запрос зарегистрирован, срок ответа — %(due)s.", due=_fmt(req.due_at)), "success")
            return redirect(url_for("dpo.request_detail", request_id=req.id))
    elif request.method == "POST":
        status_code = 422
    state = request.args.get("status", "open")
    if state not in ("open", "overdue", "closed", "all"):
        state = "open"
    if request.method == "GET" and request.args.get("citizen_id"):
        form.citizen_id.data = request.args["citizen_id"]
    return render_template("dpo/requests.html", rows=rights.listing(state), state=state, form=form,
                           now=utcnow()), status_code


def _fmt(value: datetime) -> str:
    return value.astimezone(local_tz()).strftime("%d.%m.%Y")


@bp.get("/dpo/requests/<request_id>")
@roles_required(*DPO)
def request_detail(request_id):
    req = rights.get(request_id) or abort(404)
    return render_template("dpo/request_detail.html", req=req, staff=services.staff(), now=utcnow(),
                           extend_form=ExtendForm(), answer_form=AnswerForm(), basis=rights.TYPE_BASIS[req.type],
                           verify_form=VerificationForm(formdata=None),
                           summary=services.export_summary(req.citizen_id) if req.type == "access" else None,
                           methods=rights.VERIFICATION_METHODS, documents=rights.DOCUMENT_TYPES,
                           deliveries=Labels(rights.DELIVERY_METHODS),
                           record=rights.destruction_record(req.destruction_record_id)
                           if req.destruction_record_id else None)


@bp.post("/dpo/requests/<request_id>/extend")
@roles_required(*DPO)
def request_extend(request_id):
    req = rights.get(request_id) or abort(404)
    form = ExtendForm()
    if form.validate_on_submit():
        try:
            rights.extend(req, form.reason.data, user=current_user)
            flash(_("Срок продлён до %(due)s.", due=_fmt(req.extended_due_at)), "success")
        except rights.RequestError as exc:
            flash(str(exc), "error")
    else:
        flash(_("Укажите причины продления."), "error")
    return redirect(url_for("dpo.request_detail", request_id=req.id))


@bp.post("/dpo/requests/<request_id>/verify")
@roles_required(*DPO)
def request_verify(request_id):
    """Record how the subject of an access request proves their identity (before any export)."""
    req = rights.get(request_id) or abort(404)
    form = VerificationForm()
    if form.validate_on_submit():
        try:
            rights.verify_identity(req, form.method.data, document_type=form.document.data or None,
                                   note=form.note.data, user=current_user)
            flash(_("Способ установления личности записан. Выгрузку должен утвердить второй ответственный за "
                    "ПДн."), "success")
        except rights.RequestError as exc:
            flash(str(exc), "error")
    else:
        flash(_("Проверьте форму."), "error")
    return redirect(url_for("dpo.request_detail", request_id=req.id))


@bp.post("/dpo/requests/<request_id>/approve-export")
@roles_required(*DPO)
def request_approve_export(request_id):
    """A second DPO approves answering an access request with the export."""
    req = rights.get(request_id) or abort(404)
    try:
        rights.approve_export(req, user=current_user)
        flash(_("Выгрузка утверждена."), "success")
    except rights.RequestError as exc:
        flash(str(exc), "error")
    return redirect(url_for("dpo.request_detail", request_id=req.id))


@bp.post("/dpo/requests/<request_id>/answer")
@roles_required(*DPO)
def request_answer(request_id):
    """Close a request: ``decision`` = ``answer`` or ``reject``; for an erasure ``approve`` (runs
    the erasure, a second person) or ``reject``."""
    req = rights.get(request_id) or abort(404)
    form = AnswerForm()
    if not form.validate_on_submit():
        flash(_("Проверьте форму."), "error")
        return redirect(url_for("dpo.request_detail", request_id=req.id))
    decision = form.decision.data
    try:
        if req.type == "erasure":
            if decision == "approve":
                act = rights.approve_erasure(req, user=current_user)
                flash(_("Данные уничтожены. Акт № %(number)s.", number=act.number), "success")
            else:
                rights.reject_erasure(req, form.note.data, user=current_user)
                flash(_("В уничтожении отказано."), "success")
        else:
            rights.answer(req, form.note.data, user=current_user, rejected=decision == "reject")
            flash(_("Запрос закрыт."), "success")
    except rights.RequestError as exc:
        flash(str(exc), "error")
    return redirect(url_for("dpo.request_detail", request_id=req.id))


@bp.get("/dpo/requests/<request_id>/export")
@roles_required(*DPO)
@fresh_required
def request_export(request_id):
    """The answer to an access request handed over in person: everything held on the citizen,
    ``?format=json`` (file) or the printable document (default); only after the identity document was
    recorded and a second DPO approved (409 otherwise). Each export is logged (``dsr.deliver``,
    ``dsr.export`` and every read)."""
    req = rights.get(request_id) or abort(404)
    fmt = request.args.get("format", "html")
    if fmt not in ("html", "json"):
        abort(400)
    if req.type != "access":
        abort(404)
    try:
        data = services.export_citizen(req.citizen_id, user=current_user, request=req)
    except rights.RequestError as exc:
        return render_template("error.html", status=409, message=str(exc)), 409
    if fmt == "json":
        body = json.dumps(data, ensure_ascii=False, indent=2, default=str)
        return Response(body, mimetype="application/json; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="personal-data-{req.citizen_id[:8]}.json"',
                                 "Cache-Control": "no-store"})
    return render_template("dpo/export_print.html", data=data, req=req, roles_ru=ROLE_NAMES_RU)


# --- a citizen: consent history, withdrawal on paper, erasure --------------------------------------

@bp.get("/dpo/citizens/<citizen_id>/consents")
@roles_required(*DPO)
def history(citizen_id):
    """One page that demonstrates consent: every consent given, refused and withdrawn, with the exact
    text, its hash check, the ст. 9 ч. 4 items, the evidence and the requests it started. Printable."""
    if citizens.get(citizen_id) is None:
        abort(404)
    return _history_page(citizen_id)


def _history_page(citizen_id: str, *, rectify_form=None, status: int = 200):
    data = consent.history(citizen_id, user=current_user)
    return render_template("dpo/history.html", h=data, now=utcnow(), erasure_form=ErasureForm(),
                           withdraw_form=WithdrawForm(), staff=services.staff(),
                           rectify_form=rectify_form or RectifyForm(formdata=None)), status


@bp.post("/dpo/citizens/<citizen_id>/rectify")
@roles_required(*DPO)
def citizen_rectify(citizen_id):
    """A demand to correct personal data (152-ФЗ ст. 21 ч. 2) received by the DPO: the fields filled
    in replace the old values (:func:`crm.citizens.services.rectify`, logged without the values)."""
    citizen = citizens.get(citizen_id) or abort(404)
    form = RectifyForm()
    if form.validate_on_submit():
        try:
            changed = citizens.rectify(citizen, form.changes(), user=current_user, purpose=audit.REPORT_PURPOSE,
                                       confirm_duplicate=form.confirm_duplicate.data)
        except citizens.CitizenError as exc:
            getattr(form, exc.field or "", form.full_name).errors.append(str(exc))
            form.phone_in_use = isinstance(exc, citizens.PhoneInUse)
        else:
            flash(_("Данные заявителя исправлены.") if changed else _("Изменений нет."), "success" if changed else "info")
            return redirect(url_for("dpo.history", citizen_id=citizen_id))
    return _history_page(citizen_id, rectify_form=form, status=422)


@bp.post("/dpo/consents/<consent_id>/withdraw")
@roles_required(*DPO)
def dpo_withdraw(consent_id):
    """A withdrawal received on paper, by e-mail or by phone, entered by the DPO."""
    event = consent.get(consent_id) or abort(404)
    form = WithdrawForm()
    if form.validate_on_submit():
        try:  # kept in clear on the append-only record: a registration number, no personal data
            ref = consent.check_withdrawal_ref(form.ref.data, event.citizen_id)
        except consent.ConsentError as exc:
            flash(_("Отзыв не зарегистрирован: %(error)s.", error=str(exc)), "error")
            return redirect(url_for("dpo.history", citizen_id=event.citizen_id))
        consent.withdraw(event, channel=form.channel.data if form.channel.data in consent.CHANNELS else "paper",
                          user_id=current_user.id, ref=ref)
        flash(_("Отзыв согласия зарегистрирован."), "success")
    else:
        flash(_("Проверьте форму."), "error")
    return redirect(url_for("dpo.history", citizen_id=event.citizen_id))


@bp.post("/dpo/citizens/<citizen_id>/erasure")
@roles_required(*DPO)
def erasure_request(citizen_id):
    form = ErasureForm()
    if form.validate_on_submit():
        try:
            req = rights.request_erasure(citizen_id, form.reason.data, user=current_user, channel=form.channel.data)
        except rights.RequestError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Уничтожение запрошено. Его должен утвердить другой сотрудник."), "success")
            return redirect(url_for("dpo.request_detail", request_id=req.id))
    else:
        flash(_("Укажите основание уничтожения."), "error")
    return redirect(url_for("dpo.history", citizen_id=citizen_id))


# --- destruction acts, retention, outbox ----------------------------------------------------------

@bp.get("/dpo/destruction-acts")
@roles_required(*DPO)
def acts():
    return render_template("dpo/acts.html", acts=rights.acts())


@bp.get("/dpo/destruction-acts/<act_id>")
@roles_required(*DPO)
def act(act_id):
    """The printable act of destruction (Приказ Роскомнадзора № 179)."""
    a = rights.get_act(act_id) or abort(404)
    return render_template("dpo/act_print.html", act=a, record=rights.destruction_record(a.destruction_record_id))


@bp.route("/dpo/retention", methods=["GET", "POST"])
@roles_required(*DPO)
def retention_page():
    """Retention runs and the latest report; the form runs one now (a dry run by default)."""
    form = RetentionForm()
    if form.validate_on_submit():
        row = retention.run(dry_run=bool(form.dry_run.data),
                            actor=services.actor_of(current_user))
        counts = {"erased": row.erased, "deidentified": row.deidentified, "pending": row.pending}
        flash(_("Проверка выполнена: уничтожено %(erased)s, обезличено %(deidentified)s, требует действий "
                "%(pending)s.", **counts) if row.dry_run else
              _("Обработка выполнена: уничтожено %(erased)s, обезличено %(deidentified)s, требует действий "
                "%(pending)s.", **counts), "success")
        return redirect(url_for("dpo.retention_page", run=row.id))
    runs = retention.runs()
    chosen = retention.get_run(request.args.get("run", type=int)) if request.args.get("run") else None
    return render_template("dpo/retention.html", runs=runs, run=chosen or (runs[0] if runs else None), form=form,
                           purposes={p.code: p for p in consent.purposes()},
                           recording_destructions=retention.recording_destructions())


@bp.get("/dpo/sms-outbox")
@roles_required("dpo")
def outbox():
    """Every SMS handed to the gateway: masked number, purpose, text (one-time codes and link tokens
    are stored masked, so no usable link is shown). Viewing it is logged (``sms.outbox_view``)."""
    labels = {code: translate(label) for code, label in sms.STATUS_LABELS.items()}
    rows = sms.outbox_view(user=current_user, limit=300)
    # the purposes by their names in the register, as the access log shows them (not the codes)
    purposes = {code: consent.purpose_label(code) for code in {m.purpose for m in rows}}
    return render_template("dpo/outbox.html", rows=rows, status_labels=labels, purpose_labels=purposes)


# --- the citizen's self-service download of an access request's answer -------------------------------

@selfservice_bp.get("/requests/<request_id>/export")
def selfservice_export(request_id):
    """The citizen downloads the answer to their access request (JSON) on the self-service page,
    signed in with an SMS code; only once a second DPO approved it. Logged as the citizen's reads,
    ``dsr.deliver`` and ``dsr.export``."""
    scope, grant_id = selfservice.session_scope()
    if not scope:
        flash(_("Войдите по коду из SMS."), "error")
        return redirect(url_for("selfservice.start"))
    req = rights.get(request_id)
    if req is None or req.citizen_id not in scope:
        abort(404)
    try:
        data = services.export_for_self_service(req, scope=scope, grant_id=grant_id)
    except rights.RequestError as exc:
        if exc.code == "not_found":
            abort(404)
        flash(str(exc), "error")
        return redirect(url_for("selfservice.consents"))
    body = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    return Response(body, mimetype="application/json; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="personal-data-{req.citizen_id[:8]}.json"',
                             "Cache-Control": "no-store"})
