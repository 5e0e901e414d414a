"""Pages of the consent package.

- :data:`bp` — the DPO's pages: the register of purposes (page, CSV, printable record of
  processing), data subject requests with their clocks, the access export (JSON and a printable
  document), a citizen's consent history, erasure with four-eyes approval, destruction acts,
  retention runs, the SMS outbox; and the operator's one-click consent on a call.
- :data:`public_bp` — the citizen's self-service page under ``/my`` (Russian, phone-sized): in by
  a signed link or an SMS code, then withdraw consents with one button each.

Views parse input, call one service and render; services check roles again and write the log.
"""
from __future__ import annotations

import csv
import io
import json
import time
from datetime import datetime, time as dtime

from flask import (Blueprint, Response, abort, current_app, flash, redirect, render_template, request, session,
                   url_for)
from flask_babel import gettext as _
from flask_login import current_user

from crm.consent import retention, rights, selfservice, services, sms
from crm.consent.forms import (AnswerForm, CodeForm, ErasureForm, ExtendForm, PhoneForm, PurposeForm,
                               RequestForm, RetentionForm, WithdrawForm)
from crm.db import utcnow
from crm.extensions import limiter
from crm.i18n import Labels
from crm.security import audit
from crm.security.permissions import ROLE_NAMES_RU, PermissionDenied, roles_required
from crm.security.redirects import local_target
from crm.timeutil import local_date, local_tz

bp = Blueprint("consent", __name__)
public_bp = Blueprint("selfservice", __name__, url_prefix="/my")
DPO = ("dpo", "admin")


@bp.app_context_processor
def consent_labels():
    return {"DSR_TYPES": rights.TYPES, "DSR_STATUSES": rights.STATUSES, "CONSENT_CHANNELS_RU": services.CHANNELS_RU,
            "CONSENT_STATUS_RU": Labels(services.STATUS_RU), "controller_configured": services.controller_configured,
            "purpose_ru": services.purpose_label, "role_label": audit.role_label, "outcome_ru": audit.outcome_label}


@bp.errorhandler(PermissionDenied)
def _denied(_exc):
    abort(403)


def _staff() -> dict:
    from crm.users import services as users

    return {u.id: u for u in users.list_users()}


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
    rows = services.purposes()
    name, address = services.controller()
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
    template = "consent/purposes_print.html" if fmt == "print" else "consent/purposes.html"
    return render_template(template, purposes=rows, columns=REGISTER_COLUMNS, value=_register_value,
                           controller=(name, address), configured=services.controller_configured(),
                           staff=_staff(), now=utcnow())


@bp.route("/dpo/purposes/<code>/edit", methods=["GET", "POST"])
@roles_required("dpo")
def purpose_edit(code):
    purpose = services.get_purpose(code) or abort(404)
    form = PurposeForm(obj=purpose)
    status = 200
    if form.validate_on_submit():
        values = {k: getattr(form, k).data for k in services.EDITABLE}
        try:
            changed = services.update_purpose(purpose, values, user=current_user)
        except services.ConsentError as exc:
            getattr(form, exc.field, form.name_ru).errors.append(str(exc))
            status = 422
        else:
            flash("Реестр изменён." if changed else "Изменений нет.", "success")
            return redirect(url_for("consent.purposes"))
    elif request.method == "POST":
        status = 422
    return render_template("consent/purpose_edit.html", form=form, purpose=purpose), status


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
    form.purpose.choices = [("", "все цели")] + [(p.code, p.name_ru) for p in services.purposes()]
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
            flash(f"Запрос зарегистрирован, срок ответа — {_fmt(req.due_at)}.", "success")
            return redirect(url_for("consent.request_detail", request_id=req.id))
    elif request.method == "POST":
        status_code = 422
    state = request.args.get("status", "open")
    if state not in ("open", "overdue", "closed", "all"):
        state = "open"
    if request.method == "GET" and request.args.get("citizen_id"):
        form.citizen_id.data = request.args["citizen_id"]
    return render_template("consent/requests.html", rows=rights.listing(state), state=state, form=form,
                           now=utcnow()), status_code


def _fmt(value: datetime) -> str:
    return value.astimezone(local_tz()).strftime("%d.%m.%Y")


@bp.get("/dpo/requests/<request_id>")
@roles_required(*DPO)
def request_detail(request_id):
    req = rights.get(request_id) or abort(404)
    return render_template("consent/request_detail.html", req=req, staff=_staff(), now=utcnow(),
                           extend_form=ExtendForm(), answer_form=AnswerForm(), basis=rights.TYPE_BASIS[req.type],
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
            flash(f"Срок продлён до {_fmt(req.extended_due_at)}.", "success")
        except rights.RequestError as exc:
            flash(str(exc), "error")
    else:
        flash("Укажите причины продления.", "error")
    return redirect(url_for("consent.request_detail", request_id=req.id))


@bp.post("/dpo/requests/<request_id>/answer")
@roles_required(*DPO)
def request_answer(request_id):
    """Close a request: ``decision`` = ``answer`` or ``reject``; for an erasure ``approve`` (runs
    the erasure, a second person) or ``reject``."""
    req = rights.get(request_id) or abort(404)
    form = AnswerForm()
    if not form.validate_on_submit():
        flash("Проверьте форму.", "error")
        return redirect(url_for("consent.request_detail", request_id=req.id))
    decision = form.decision.data
    try:
        if req.type == "erasure":
            if decision == "approve":
                act = rights.approve_erasure(req, user=current_user)
                flash(f"Данные уничтожены. Акт № {act.number}.", "success")
            else:
                rights.reject_erasure(req, form.note.data, user=current_user)
                flash("В уничтожении отказано.", "success")
        else:
            rights.answer(req, form.note.data, user=current_user, rejected=decision == "reject")
            flash("Запрос закрыт.", "success")
    except rights.RequestError as exc:
        flash(str(exc), "error")
    return redirect(url_for("consent.request_detail", request_id=req.id))


@bp.get("/dpo/requests/<request_id>/export")
@roles_required(*DPO)
def request_export(request_id):
    """The answer to an access request: everything held on the citizen, ``?format=json`` (file) or
    the printable document (default). Each export is logged (``dsr.export`` and every read)."""
    req = rights.get(request_id) or abort(404)
    fmt = request.args.get("format", "html")
    if fmt not in ("html", "json"):
        abort(400)
    if req.type != "access":
        abort(404)
    data = rights.export_citizen(req.citizen_id, user=current_user, request=req)
    if fmt == "json":
        body = json.dumps(data, ensure_ascii=False, indent=2, default=str)
        return Response(body, mimetype="application/json; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="personal-data-{req.citizen_id[:8]}.json"',
                                 "Cache-Control": "no-store"})
    return render_template("consent/export_print.html", data=data, req=req, roles_ru=ROLE_NAMES_RU)


# --- a citizen: consent history, withdrawal on paper, erasure, self-service link -------------------

@bp.get("/dpo/citizens/<citizen_id>/consents")
@roles_required(*DPO)
def history(citizen_id):
    """One page that demonstrates consent: every consent given, refused and withdrawn, with the exact
    text, its hash check, the ст. 9 ч. 4 items, the evidence and the requests it started. Printable."""
    from crm.citizens import services as citizens

    if citizens.get(citizen_id) is None:
        abort(404)
    data = services.history(citizen_id, user=current_user)
    return render_template("consent/history.html", h=data, now=utcnow(), erasure_form=ErasureForm(),
                           withdraw_form=WithdrawForm(), staff=_staff())


@bp.post("/dpo/consents/<consent_id>/withdraw")
@roles_required(*DPO)
def dpo_withdraw(consent_id):
    """A withdrawal received on paper, by e-mail or by phone, entered by the DPO."""
    event = services.get(consent_id) or abort(404)
    form = WithdrawForm()
    if form.validate_on_submit():
        services.withdraw(event, channel=form.channel.data if form.channel.data in services.CHANNELS else "paper",
                          user_id=current_user.id, ref=form.ref.data)
        flash("Отзыв согласия зарегистрирован.", "success")
    else:
        flash("Проверьте форму.", "error")
    return redirect(url_for("consent.history", citizen_id=event.citizen_id))


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
            flash("Уничтожение запрошено. Его должен утвердить другой сотрудник.", "success")
            return redirect(url_for("consent.request_detail", request_id=req.id))
    else:
        flash("Укажите основание уничтожения.", "error")
    return redirect(url_for("consent.history", citizen_id=citizen_id))


@bp.post("/citizens/<citizen_id>/selfservice-link")
@roles_required("operator", "admin", "dpo")
def selfservice_link(citizen_id):
    """Text the citizen a single-use link to their self-service page."""
    from crm.citizens import services as citizens

    citizen = citizens.get(citizen_id) or abort(404)
    base = current_app.config["CRM_PUBLIC_URL"] or request.url_root
    try:
        selfservice.issue_link(citizen, user=current_user, base_url=base)
        flash("Ссылка на страницу управления согласиями отправлена по SMS.", "success")
    except selfservice.SelfServiceError as exc:
        flash(str(exc), "error")
    default = url_for("consent.history", citizen_id=citizen_id) if current_user.role in DPO \
        else url_for("appeals.operator_home")
    return redirect(local_target(request.form.get("next"), default))


# --- destruction acts, retention, outbox ----------------------------------------------------------

@bp.get("/dpo/destruction-acts")
@roles_required(*DPO)
def acts():
    return render_template("consent/acts.html", acts=rights.acts())


@bp.get("/dpo/destruction-acts/<act_id>")
@roles_required(*DPO)
def act(act_id):
    """The printable act of destruction (Приказ Роскомнадзора № 179)."""
    a = rights.get_act(act_id) or abort(404)
    return render_template("consent/act_print.html", act=a, record=rights.destruction_record(a.destruction_record_id))


@bp.route("/dpo/retention", methods=["GET", "POST"])
@roles_required(*DPO)
def retention_page():
    """Retention runs and the latest report; the form runs one now (a dry run by default)."""
    form = RetentionForm()
    if form.validate_on_submit():
        if current_user.role != "dpo" and not form.dry_run.data:
            abort(403)
        row = retention.run(dry_run=bool(form.dry_run.data),
                            actor=rights._actor_of(current_user))
        flash(("Проверка" if row.dry_run else "Обработка") + f" выполнена: уничтожено {row.erased}, обезличено "
              f"{row.deidentified}, требует действий {row.pending}.", "success")
        return redirect(url_for("consent.retention_page", run=row.id))
    runs = retention.runs()
    chosen = retention.get_run(request.args.get("run", type=int)) if request.args.get("run") else None
    return render_template("consent/retention.html", runs=runs, run=chosen or (runs[0] if runs else None), form=form,
                           purposes={p.code: p for p in services.purposes()})


@bp.get("/dpo/sms-outbox")
@roles_required("dpo")
def outbox():
    """Every SMS handed to the gateway: masked number, purpose, text (codes hidden)."""
    return render_template("consent/outbox.html", rows=sms.outbox(limit=300))


# --- the citizen's self-service page --------------------------------------------------------------

SESSION_KEYS = ("ss_scope", "ss_until", "ss_grant", "ss_pending")


def _scope() -> list[str]:
    """The citizen ids of this self-service session, or [] when there is none or it expired."""
    scope, until = session.get("ss_scope"), session.get("ss_until", 0)
    if not scope or until < time.time():
        for k in ("ss_scope", "ss_until", "ss_grant"):
            session.pop(k, None)
        return []
    return list(scope)


def _start_session(scope: list[str], grant_id: str) -> None:
    session["ss_scope"] = scope
    session["ss_grant"] = grant_id
    session["ss_until"] = int(time.time()) + selfservice.session_s()
    session.pop("ss_pending", None)


def _refused(exc: selfservice.SelfServiceError):
    status = 400 if exc.code in ("forged", "wrong_code") else 410
    return render_template("consent/self_refused.html", message=str(exc), form=PhoneForm()), status


@public_bp.route("", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def start():
    """The entry page: type the phone number to get a code by SMS."""
    if request.method == "GET" and _scope():
        return redirect(url_for("selfservice.consents"))
    form = PhoneForm()
    if form.validate_on_submit():
        from crm.citizens.services import CitizenError

        try:
            session["ss_pending"] = selfservice.request_code(form.phone.data)
        except CitizenError as exc:
            form.phone.errors.append(str(exc))
        else:
            return redirect(url_for("selfservice.code"))
    status = 422 if request.method == "POST" else 200
    return render_template("consent/self_start.html", form=form), status


@public_bp.route("/code", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def code():
    """Type the code from the SMS."""
    pending = session.get("ss_pending")
    if not pending:
        return redirect(url_for("selfservice.start"))
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        try:
            scope = selfservice.verify_code(pending, form.code.data)
        except selfservice.SelfServiceError as exc:
            form.code.errors.append(str(exc))
            status = 400
            if exc.code in ("used", "expired", "too_many"):
                session.pop("ss_pending", None)
        else:
            _start_session(scope, pending)
            return redirect(url_for("selfservice.consents"))
    elif request.method == "POST":
        status = 422
    return render_template("consent/self_code.html", form=form), status


@public_bp.route("/link/<token>", methods=["GET", "POST"])
def link(token):
    """A signed link: GET checks it and shows a button (link previewers must not use it up), POST uses it."""
    try:
        if request.method == "POST":  # CSRF is checked by CSRFProtect, as on every form
            scope, grant_id = selfservice.use_link(token)
            _start_session(scope, grant_id)
            return redirect(url_for("selfservice.consents"))
        selfservice.check_link(token)
    except selfservice.SelfServiceError as exc:
        if request.method == "GET":
            selfservice.refused(exc)
        return _refused(exc)
    return render_template("consent/self_link.html")


@public_bp.get("/consents")
def consents():
    """The citizen's consents with a withdraw button each; no personal values are shown."""
    scope = _scope()
    if not scope:
        flash(_("Войдите по ссылке или коду из SMS."), "error")
        return redirect(url_for("selfservice.start"))
    regs = {p.code: p for p in services.purposes()}
    events = [e for cid in scope for e in services.for_citizen(cid) if e.given]
    active = [e for e in events if e.status == "active"]
    past = [e for e in events if e.status != "active"]
    return render_template("consent/self_consents.html", active=active, past=past, purposes=regs,
                           texts={e.id: services.consent_text(e)[0] for e in events},
                           until=session.get("ss_until"))


@public_bp.post("/consents/<consent_id>/withdraw")
def withdraw(consent_id):
    """Withdraw one consent (and any other in force for the same purpose). Always accepted."""
    scope = _scope()
    event = services.get(consent_id)
    if not scope:
        flash(_("Сеанс истёк: войдите снова по ссылке или коду из SMS."), "error")
        return redirect(url_for("selfservice.start"))
    if event is None or event.citizen_id not in scope:
        abort(404)
    services.withdraw(event, channel="web", ref=f"selfservice grant {session.get('ss_grant')}",
                      actor=selfservice.CITIZEN)
    name = services.get_purpose(event.purpose_code)
    flash(_("Согласие «%(purpose)s» отозвано. Обработка по этой цели прекращена.",
            purpose=name.name_ru if name else event.purpose_code), "success")
    return redirect(url_for("selfservice.consents"))


@public_bp.post("/logout")
def logout():
    for k in SESSION_KEYS:
        session.pop(k, None)
    flash(_("Вы вышли. Чтобы вернуться, запросите новый код."), "success")
    return redirect(url_for("selfservice.start"))
