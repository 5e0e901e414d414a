"""The data-protection officer's pages: the access log, the per-citizen access report (page, CSV,
printable document), alerts about unusual access. The DPO reads logs and consent records, never
appeal contents; the only personal values shown are a citizen's name and masked phone, and showing
them is logged."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from crm.db import utcnow
from crm.errors import InvalidInput
from crm.timeutil import day_start, parse_day
from crm.security import alerts, audit
from crm.security.permissions import ROLE_NAMES_RU, roles_required
from crm.security.redirects import local_target

bp = Blueprint("security", __name__)
PAGE = 100


class DpoPhoneSearchForm(FlaskForm):
    """The DPO's search by phone: a POST with CSRF, so the number stays out of URLs."""

    phone = StringField("Телефон заявителя", validators=[DataRequired(message="Введите номер телефона"),
                                                         Length(max=40)])


def _known_citizen(citizen_id: str) -> bool:
    """A citizen with this id exists, or did (the access log still names it)."""
    from crm.citizens import services as citizens

    return citizens.get(citizen_id) is not None or bool(audit.search(citizen_id=citizen_id, limit=1)[0])


def _unknown_citizen(citizen_id: str):
    """The lookup page with a Russian error instead of a report (and its CSV and print links)."""
    return _lookup_page(citizen_id=citizen_id, status=404,
                        id_error=f"Заявитель с id «{citizen_id[:40]}» не найден. Проверьте id или найдите "
                                 "заявителя по телефону.")


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
        return None, None, first, last, (f"Дата начала периода ({first}) позже даты окончания ({last}): "
                                         "исправьте период.")
    return start, end, first, last, None


def _period() -> tuple[datetime | None, datetime | None, str, str]:
    """As :func:`_parse_period`, for the access log: a bad period is flashed and ignored."""
    start, end, first, last, error = _parse_period()
    if error:
        flash(error, "error")
        return None, None, "", ""
    return start, end, first, last


def _staff() -> dict:
    from crm.users import services as users

    return {u.id: u for u in users.list_users()}


@bp.get("/dpo/access-log")
@roles_required("dpo")
def access_log():
    """The access log, newest first; filters: citizen, staff member, period, action, purpose; keyset paging.
    Each code is shown by its Russian label with the code beside it (the filters take codes)."""
    f = {k: request.args.get(k, "").strip() for k in ("citizen_id", "actor", "action", "purpose")}
    start, end, f["from"], f["to"] = _period()
    rows, more = audit.search(**{k: f[k] for k in ("citizen_id", "actor", "action", "purpose")}, start=start,
                              end=end, before=request.args.get("before", type=int), limit=PAGE)
    purposes = audit.purpose_names()
    staff = _staff()
    head_seq, head_hash = audit.head()
    return render_template("security/access_log.html", rows=_log_rows(rows, staff, purposes), f=f, more=more,
                           next_before=rows[-1].seq if more else None, actor_choices=_actor_choices(staff),
                           action_choices=_action_choices(), purpose_choices=[("", list(purposes.items()))],
                           actor_label=audit.actor_label, action_label=audit.action_label,
                           purpose_label=lambda code: purposes.get(code, code),
                           head_seq=head_seq, head_hash=head_hash,
                           open_alerts=len(alerts.listing("open", limit=1000)), checkpoint=_last_checkpoint(),
                           retention_days=current_app.config["CRM_AUDIT_RETENTION_DAYS"])


#: Groups of the action filter; labelled actions in none of them come under «Прочее».
ACTION_GROUPS = (("Чтение персональных данных", audit.READ_ACTIONS), ("Изменение данных", audit.CHANGE_ACTIONS),
                 ("Вход и учётные записи", audit.AUTH_ACTIONS),
                 ("Безопасность, ключи, журнал", audit.SECURITY_ACTIONS))
#: Actors that are neither staff nor jobs: the citizens' self-service pages (crm.consent.selfservice)
#: and requests from no one signed in (audit.current_actor).
OTHER_ACTORS = ("citizen:selfservice", "anonymous")
#: Jobs logged as ``job:<name>:<detail>`` (``crm audit attest``): no exact login to filter by.
_SUFFIXED_JOBS = frozenset({"attest"})

Choices = list[tuple[str, list[tuple[str, str]]]]  # [(group label or "", [(code, label), ...]), ...]


def _action_choices() -> Choices:
    """The action filter's options by group, each labelled action once."""
    groups, seen = [], set()
    for title, codes in ACTION_GROUPS:
        groups.append((title, [(code, audit.action_label(code)) for code in codes]))
        seen.update(codes)
    rest = [(code, label) for code, label in audit.ACTION_LABELS.items()
            if code not in seen]
    return groups + [("Прочее", rest)]


def _actor_choices(staff: dict) -> Choices:
    """The staff-member filter's options: staff by login (name, login, role), then the system jobs
    (``job:<name>``) and the other non-staff actors, by their Russian labels."""
    people = [(u.username, f"{u.display_name}, {audit.role_label(u.role)}") for u in staff.values()]
    jobs = [(f"job:{job}", audit.actor_label(f"job:{job}")) for job in audit.SYSTEM_ACTOR_LABELS
            if job not in _SUFFIXED_JOBS]
    others = [(actor, audit.actor_label(actor)) for actor in OTHER_ACTORS]
    return [("Сотрудники", people), ("Система", jobs), ("Без учётной записи", others)]


def _log_rows(rows, staff: dict, purposes: dict[str, str]) -> list[dict]:
    """Access-log entries for the viewer: each code (actor, role, action, fields, purpose, outcome)
    beside its Russian label, worded as in :func:`audit.access_report`; a code with no label is its
    own label."""
    shown = []
    for r in rows:
        shown.append({
            **audit.entry_labels(r, staff.get(r.actor_id), purposes),
            "seq": r.seq, "at": r.at, "citizen_id": r.citizen_id, "appeal_id": r.appeal_id, "call_id": r.call_id,
            "ip": r.ip, "actor": r.actor, "role": r.actor_role, "action": r.action,
            "fields": ",".join(audit.entry_fields(r)), "purpose": r.purpose or "", "outcome": r.outcome})
    return shown


def _last_checkpoint() -> dict | None:
    from crm.security import checkpoints

    return checkpoints.latest(Path(current_app.config["CRM_AUDIT_CHECKPOINT_DIR"]))


@bp.get("/dpo/citizens")
@roles_required("dpo")
def citizen_lookup():
    """The lookup page; ``?citizen_id=`` opens that citizen's access report (an id, never a phone:
    the search by phone is a POST, :func:`citizen_search`)."""
    citizen_id = request.args.get("citizen_id", "").strip()
    if citizen_id:
        if not _known_citizen(citizen_id):
            return _unknown_citizen(citizen_id)
        return redirect(url_for("security.access_report", citizen_id=citizen_id))
    return _lookup_page()


@bp.post("/dpo/citizens")
@roles_required("dpo")
def citizen_search():
    """Find a citizen by phone for a data subject request; the lookup is logged like any other. The
    results are rendered in this response, so the number is never in a URL."""
    from crm.citizens import services as citizens

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
    return render_template("security/citizen_lookup.html", form=form or DpoPhoneSearchForm(formdata=None),
                           found=list(found), error=error, searched=searched, citizen_id=citizen_id,
                           id_error=id_error), status


CSV_COLUMNS = [("seq", "№ записи"), ("at", "Время (МСК)"), ("actor_name", "Кто"), ("actor", "Логин"),
               ("actor_role", "Роль"), ("action", "Действие (код)"), ("action_label", "Действие"),
               ("fields_label", "Категории данных"), ("purpose", "Цель (код)"), ("purpose_label", "Цель"),
               ("appeal_number", "Обращение"), ("call_id", "Звонок"), ("ip", "IP"), ("outcome", "Итог"),
               ("hash", "Хеш записи")]


@bp.get("/dpo/citizens/<citizen_id>/access-report")
@roles_required("dpo")
def access_report(citizen_id):
    """Who saw this person's data and why: a page, ``?format=csv``, or the printable document
    (``/print``). Each report is logged (``audit.report``)."""
    fmt = request.args.get("format", "html")
    if fmt not in ("html", "csv"):
        abort(400)
    return _report(citizen_id, fmt)


@bp.get("/dpo/citizens/<citizen_id>/access-report/print")
@roles_required("dpo")
def access_report_print(citizen_id):
    """The access report as a printable document (print stylesheet; the browser prints or saves PDF)."""
    return _report(citizen_id, "print")


def _report(citizen_id: str, fmt: str):
    if not _known_citizen(citizen_id):  # an unknown id: no report, no CSV or print links for it
        if fmt == "html":
            return _unknown_citizen(citizen_id)
        abort(404)
    start, end, first, last, period_error = _parse_period()
    if period_error:  # not a silently empty (or silently unfiltered) report
        if fmt != "html":
            return render_template("error.html", status=400, message=period_error), 400
        return render_template("security/access_report.html", citizen_id=citizen_id, report=None, first=first,
                               last=last, period_error=period_error, now=utcnow()), 400
    report = audit.access_report(citizen_id, start=start, end=end, fmt=fmt)
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
    template = "security/access_report_print.html" if fmt == "print" else "security/access_report.html"
    return render_template(template, citizen_id=citizen_id, report=report, first=first, last=last, now=utcnow())


@bp.get("/dpo/alerts")
@roles_required("dpo")
def alert_list():
    """Alerts about unusual access; ``?status=open|acknowledged|all``, ``?rule=``."""
    status = request.args.get("status", "open")
    if status not in ("open", "acknowledged", "all"):
        status = "open"
    rule = request.args.get("rule") or None
    return render_template("security/alerts.html", alerts=alerts.listing(status, rule if rule in alerts.RULES else None),
                           status=status, rule=rule, rules=alerts.RULES, staff=_staff())


@bp.post("/dpo/alerts/scan")
@roles_required("dpo")
def alert_scan():
    """Run the rules over the log now (also done hourly by the worker)."""
    counts = alerts.scan(actor=audit.current_actor())
    flash(f"Проверка выполнена: новых оповещений {counts['new']}, обновлено {counts['updated']}.", "success")
    return redirect(url_for("security.alert_list"))


@bp.post("/dpo/alerts/<int:alert_id>/acknowledge")
@roles_required("dpo")
def alert_acknowledge(alert_id):
    """Mark an alert reviewed, with a comment; logged as ``audit.alert_ack``."""
    alert = alerts.get(alert_id) or abort(404)
    alerts.acknowledge(alert, user=current_user, comment=request.form.get("comment"))
    flash("Оповещение отмечено как рассмотренное.", "success")
    return redirect(local_target(request.form.get("next"), url_for("security.alert_list")))
