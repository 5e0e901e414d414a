"""Operator pages: find or register a citizen, log an appeal with its recording and consents."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import format_datetime, gettext as _
from flask_login import current_user

from crm import hooks
from crm.appeals import repeats, services
from crm.appeals.catalog import CATEGORIES, CHANNELS, DEADLINE_KINDS, HISTORY_KINDS, STATUSES, TOPICS, TRANSITIONS
from crm.incidents.catalog import KINDS as INCIDENT_KINDS, TOPICS as INCIDENT_TOPICS
from crm.appeals.forms import (AppealForm, CitizenForm, CommentForm, DuplicateForm, PhoneSearchForm, QuickConsentForm,
                               MomentError, RecordingForm, TransitionForm, consent_moment)
from crm.buildings import services as buildings
from crm.calls import services as calls
from crm.citizens import services as citizens
from crm.citizens.forms import RectifyForm
from crm.clocks import deadlines as clockwork
from crm.consent import selfservice
from crm.consent import services as consent
from crm.notifications import services as notify
from crm.db import utcnow
from crm.errors import NotFound
from crm.i18n import Labels
from crm.incidents import services as incidents
from crm.security.permissions import roles_required
from crm.security.redirects import local_target
from crm.timeutil import day_start, local_date, local_tz
from crm.security.permissions import ROLE_NAMES_RU

bp = Blueprint("appeals", __name__)
#: the citizen's own appeals on the self-service pages (signed in by an SMS code or link, crm.consent)
self_bp = Blueprint("appeals_selfservice", __name__, url_prefix="/my")
OPERATORS = ("operator", "admin")


@bp.app_context_processor
def catalog():

    return {"CATEGORIES": Labels(CATEGORIES), "TOPICS": Labels(TOPICS), "STATUSES": Labels(STATUSES),
            "CHANNELS": Labels(CHANNELS), "role_ru": lambda r: _(ROLE_NAMES_RU[r]) if r in ROLE_NAMES_RU else r,
            "DEADLINE_KINDS": Labels(DEADLINE_KINDS), "appeal_deadline": services.next_deadline, "deadline_now": utcnow,
            "CLOCK_TITLES": Labels({c.code: c.title for c in clockwork.DEFAULT_CLOCKS}),
            "CLOCK_STATES": Labels(clockwork.STATE_LABELS), "HISTORY_KINDS": Labels(HISTORY_KINDS)}


@bp.app_template_filter("deadline_time")
def deadline_time(due: datetime, now: datetime) -> str:
    """``due`` (aware, UTC) as an operator reads it against ``now`` in ``CRM_TIMEZONE`` (Flask-Babel's
    formatter, words in the request's language): ``14:30`` today, ``09:00 завтра`` / ``18:00 вчера``,
    otherwise ``12.03.2026 14:30``."""
    day, today = due.astimezone(local_tz()).date(), local_date(now)
    clock = format_datetime(due, "HH:mm")
    if day == today:
        return clock
    if day == today + timedelta(days=1):
        return _("%(time)s завтра", time=clock)
    if day == today - timedelta(days=1):
        return _("%(time)s вчера", time=clock)
    return format_datetime(due, "dd.MM.yyyy HH:mm")


#: Characters of a call reference kept (an itsdangerous token of about 100; anything longer is not one).
CALL_REF_MAX = 400


def _call_ref(value) -> str:
    """A call reference as received (a query argument or a hidden field), cut to :data:`CALL_REF_MAX`;
    "" for none. Opaque here: crm.telephony checks it when the appeal is registered."""
    return str(value or "").strip()[:CALL_REF_MAX]


def _operator_page(form, *, found=(), error=None, searched=False, new_form=None, duplicates=(), status=200,
                   call_ref: str = ""):
    new_form = new_form or CitizenForm(formdata=None)
    if not new_form.submission_key.data:
        new_form.submission_key.data = uuid.uuid4().hex
    call_ref = _call_ref(call_ref or form.call_ref.data or new_form.call_ref.data)
    form.call_ref.data = new_form.call_ref.data = call_ref
    return render_template("appeals/operator.html", form=form, found=list(found), error=error, searched=searched,
                           new_form=new_form, duplicates=list(duplicates), call_ref=call_ref or None,
                           recent=services.recent(limit=15, operator_id=current_user.id)), status


@bp.get("/operator")
@roles_required(*OPERATORS)
def operator_home():
    """The search form, the new-citizen form and the operator's recent appeals. The search itself is
    a POST (:func:`citizen_search`): a phone number in a URL ends up in request logs and history.

    ``?call=<call record id>`` (the screen pop's intake, crm.telephony): the caller's number, which
    the ``telephony.caller`` hook gives only to the operator who answered that call (logged), is
    searched at once and prefilled in both forms; the URL carries the record's id, never the number.
    ``?call_ref=``: the pop's call reference, handed on to the appeal form (the links to it and the
    new-citizen form carry it), so the appeal is linked to that call (crm.telephony.pop)."""
    call_id = request.args.get("call")
    call_ref = _call_ref(request.args.get("call_ref"))
    phone = hooks.ask("telephony.caller", call_id=call_id, user=current_user) if call_id else None
    if not phone:
        return _operator_page(PhoneSearchForm(formdata=None), call_ref=call_ref)
    found = [citizens.view(c, purpose="appeal_processing") for c in citizens.find_by_phone(phone)]
    return _operator_page(PhoneSearchForm(formdata=None, phone=phone), found=found, searched=True,
                          new_form=CitizenForm(formdata=None, phone=phone), call_ref=call_ref)


@bp.post("/operator")
@roles_required(*OPERATORS)
def citizen_search():
    """Find citizens by phone; the results are rendered in this response (no redirect, so the number
    is never in a URL). Each match shown is logged by :func:`crm.citizens.services.view`."""
    form = PhoneSearchForm()
    if not form.validate_on_submit():
        return _operator_page(form, status=422)
    phone = form.phone.data.strip()
    try:
        found = [citizens.view(c, purpose="appeal_processing") for c in citizens.find_by_phone(phone)]
    except citizens.CitizenError as exc:
        return _operator_page(form, error=str(exc), searched=True, status=422)
    return _operator_page(form, found=found, searched=True, new_form=CitizenForm(formdata=None, phone=phone),
                          call_ref=form.call_ref.data)


@bp.post("/citizens")
@roles_required(*OPERATORS)
def citizen_create():
    """Register a citizen and go to their new-appeal form. When the phone already belongs to other
    citizens nothing is registered: the form comes back (409) with them listed, each with a link to
    take that citizen, and the «Всё равно зарегистрировать» checkbox; the names shown are logged as
    the phone search logs them. A re-sent form (same ``submission_key``) goes to the citizen its first
    submission registered."""
    form = CitizenForm()
    if form.validate_on_submit():
        confirmed = form.confirmed_phone.data if form.confirm_duplicate.data else None
        try:
            result = citizens.register_checked(
                citizens.CitizenData(form.full_name.data, form.phone.data, form.email.data, form.address.data,
                                     form.apartment.data),
                confirmed_phone=confirmed, submission_key=form.submission_key.data)
        except citizens.CitizenError as exc:
            getattr(form, exc.field or "full_name").errors.append(str(exc))
        else:
            if result.citizen is not None:
                if not result.replayed:
                    flash(_("Заявитель зарегистрирован."), "success")
                return redirect(url_for("appeals.appeal_new", citizen_id=result.citizen.id,
                                        call_ref=_call_ref(form.call_ref.data) or None))
            form.confirmed_phone.data = form.phone.data  # the number the warning is about
            form.confirm_duplicate.data = False
            return _operator_page(PhoneSearchForm(formdata=None), new_form=form, duplicates=result.duplicates,
                                  status=409)
    return _operator_page(PhoneSearchForm(formdata=None), new_form=form, status=422)


#: The intake form's consent questions: form field → purpose code.
CONSENT_FIELDS = {"consent_sms": "sms_notifications", "consent_email": "email_notifications",
                  "consent_recording": "call_recording_qa"}


@bp.route("/citizens/<citizen_id>/appeals/new", methods=["GET", "POST"])
@roles_required(*OPERATORS)
def appeal_new(citizen_id):
    """The new-appeal form of a citizen. Registered by :func:`crm.appeals.services.register_appeal`,
    the service of ``POST /api/v1/appeals``: the appeal, the recording and the consent answers in one
    transaction, or nothing (the form comes back, 422, with the reason on its field). A re-sent form
    (same ``submission_key``) goes to the appeal its first submission made."""
    citizen = citizens.get(citizen_id) or abort(404)
    form = AppealForm()
    waiting = _waiting_calls(citizen.id)  # the telephony's recordings of this caller
    form.call_id.choices = [("", _("— без записи из телефонии —"))] + [
        (c.id, _("звонок %(at)s", at=format_datetime(c.created_at, "dd.MM HH:mm"))) for c in waiting]
    if request.method == "GET":
        form.submission_key.data = uuid.uuid4().hex
        form.call_ref.data = _call_ref(request.args.get("call_ref"))  # opened from a screen pop
        asked = request.args.get("call_id")
        # the call asked for (the call page's «Новое обращение»), else the caller's call of the last hour
        fresh = [c for c in waiting if c.created_at >= utcnow() - timedelta(hours=1)]
        form.call_id.data = asked if asked in {c.id for c in waiting} else (fresh[0].id if fresh else "")
    status = 200
    if form.validate_on_submit() and _building_picked(form):
        upload = form.recording.data
        answers = {purpose: getattr(form, name).data == "yes" for name, purpose in CONSENT_FIELDS.items()
                   if getattr(form, name).data in ("yes", "no")}
        try:
            intake = services.register_appeal(
                current_user, citizen_id=citizen.id, category=form.category.data, topic=form.topic.data,
                description=form.description.data, channel=form.channel.data, consents=answers,
                consent_offset_s=getattr(form.consent_at, "seconds", None),
                recording=(upload.stream, upload.filename) if upload and getattr(upload, "filename", "") else None,
                submission_key=form.submission_key.data or None, building_id=form.building_id.data or None,
                repeat_of_id=form.repeat_of_id.data or None,
                call_id=None if upload and getattr(upload, "filename", "") else (form.call_id.data or None),
                incident_id=_incident_id(form), call_ref=_call_ref(form.call_ref.data) or None)
        except services.AppealError as exc:
            field_name = "topic" if exc.field in ("repeat_of_id", "incident_id") else (exc.field or "description")
            getattr(form, field_name, form.description).errors.append(str(exc))
        except calls.CallError as exc:
            form.recording.errors.append(str(exc))
        except consent.ConsentError as exc:
            name = next((n for n, p in CONSENT_FIELDS.items() if p == getattr(exc, "purpose", None)), "consent_sms")
            getattr(form, name).errors.append(_("Ответ о согласии не записан: %(error)s.", error=exc))
        else:
            if not intake.replayed:
                flash(_("Обращение № %(number)s зарегистрировано.", number=intake.appeal.number), "success")
                if intake.consent_error:
                    flash(_("Ответ о согласии не записан: %(error)s.", error=intake.consent_error), "error")
                if intake.call is not None:
                    flash(_("Запись звонка принята и поставлена на расшифровку."), "success")
            return redirect(url_for("appeals.appeal_detail", appeal_id=intake.appeal.id))
        status = 422
    elif request.method == "POST":
        status = 422
    card = citizens.view(citizen, purpose="appeal_processing")
    if request.method == "GET" and not form.building.data and not card.get("erased"):
        house = _citizen_house(citizen)
        if house is not None:
            form.building.data, form.building_id.data = house.address, house.id
    house_id = form.building_id.data if str(form.building_id.data or "").isdigit() else None
    active = incidents.active_for(building_id=int(house_id)) if house_id else []
    return render_template("appeals/new.html", form=form, citizen=card, citizen_id=citizen.id,
                           window_days=current_app.config["CRM_REPEAT_WINDOW_DAYS"],
                           incidents=[_incident_item(i) for i in active]), status


def _waiting_calls(citizen_id: str) -> list:
    """The telephony's recordings of the caller not yet attached to an appeal or an incident."""
    waiting = calls.unattached_for_citizen(citizen_id)
    taken = incidents.attached_call_ids([c.id for c in waiting])
    return [c for c in waiting if c.id not in taken]


def _incident_id(form) -> int | None:
    raw = (request.form.get("incident_id") or "").strip()
    return int(raw) if raw.isdigit() else None


def _incident_item(incident) -> dict:
    """An active incident as the intake's banner shows it (the same keys the banner's script builds)."""
    data = incidents.brief(incident)
    data.update(topic_label=_(INCIDENT_TOPICS[incident.topic]), kind_label=_(INCIDENT_KINDS[incident.kind]),
                starts=format_datetime(incident.starts_at, "dd.MM HH:mm"),
                ends=format_datetime(incident.ends_at, "dd.MM HH:mm") if incident.ends_at else "")
    return data


@bp.get("/citizens/<citizen_id>/incidents/active")
@roles_required(*OPERATORS)
def intake_incidents(citizen_id):
    """The intake page's script asks, when the operator picks the caller's house (``?building_id=``, the
    register's id: no address in the URL): the active incidents of that house, as the banner shows them."""
    citizens.get(citizen_id) or abort(404)
    raw = request.args.get("building_id") or ""
    found = incidents.active_for(building_id=int(raw)) if raw.isdigit() else []
    return jsonify({"items": [_incident_item(i) for i in found]})


@bp.post("/citizens/<citizen_id>/incidents/<int:incident_id>/attach")
@roles_required(*OPERATORS)
def incident_attach(citizen_id, incident_id):
    """«Добавить звонок к инциденту»: the new-appeal form sent to count this call (the telephony's
    recording picked on the form, if any, and the consent answers) on the incident instead of opening
    an appeal (:func:`crm.incidents.services.attach_call_with_consents`)."""
    citizen = citizens.get(citizen_id) or abort(404)
    form = AppealForm()
    form.call_id.choices = [("", "")] + [(c.id, c.id) for c in _waiting_calls(citizen.id)]
    answers = {purpose: getattr(form, name).data == "yes" for name, purpose in CONSENT_FIELDS.items()
               if getattr(form, name).data in ("yes", "no")}
    call_id = form.call_id.data if form.call_id.data in {c for c, _ in form.call_id.choices if c} else None
    try:
        done = incidents.attach_call_with_consents(current_user, incident_id, citizen_id=citizen.id, call_id=call_id,
                                                   consents=answers, consent_offset_s=consent_moment(form))
    except (incidents.IncidentError, consent.ConsentError, MomentError) as exc:
        flash(_("Звонок не добавлен к инциденту: %(error)s.", error=exc), "error")
        return redirect(url_for("appeals.appeal_new", citizen_id=citizen.id))
    flash(_("Звонок добавлен к инциденту № %(id)s (звонков по нему: %(n)s); новое обращение не открыто.",
            id=incident_id, n=incidents.counts(incident_id)["calls_count"]), "success")
    if done.consent_error:
        flash(_("Ответ о согласии не записан: %(error)s.", error=done.consent_error), "error")
    return redirect(url_for("appeals.citizen_card", citizen_id=citizen.id))


@bp.post("/citizens/<citizen_id>/appeals/repeat-candidates")
@roles_required(*OPERATORS)
def repeat_candidates(citizen_id):
    """The intake page's script asks, while the operator types (JSON body ``{topic, building_id?,
    address?}``, the CSRF token in ``X-CSRFToken``): the open or recent appeals the new one may repeat
    (:func:`crm.appeals.repeats.candidates`, logged). A POST: the typed address stays out of URLs."""
    body = request.get_json(silent=True) or {}
    raw = body.get("building_id")
    try:
        building_id = int(raw) if raw not in (None, "") else None
    except (TypeError, ValueError):
        building_id = None
    try:
        found = repeats.candidates(current_user, citizen_id=citizen_id, topic=str(body.get("topic") or ""),
                                   building_id=building_id, address=str(body.get("address") or "")[:300] or None)
    except services.AppealError as exc:
        return jsonify({"error": {"code": "invalid_topic", "message": str(exc)}}), 400
    except NotFound:
        abort(404)
    items = []
    for c in found:
        d = c.as_dict()
        d.update(status_label=_(STATUSES[c.appeal.status]), topic_label=_(TOPICS[c.appeal.topic]),
                 created=format_datetime(c.appeal.created_at, "dd.MM.yyyy"),
                 url=url_for("appeals.appeal_detail", appeal_id=c.appeal.id))
        items.append(d)
    return jsonify({"items": items})


@bp.post("/citizens/<citizen_id>/appeals/attach")
@roles_required(*OPERATORS)
def appeal_attach(citizen_id):
    """«Добавить звонок к обращению»: the new-appeal form sent to put this call (the telephony's
    recording picked on the form, or the file uploaded) and the consent answers into the existing
    appeal ``attach_to`` instead of opening another (:func:`crm.appeals.repeats.attach_call`)."""
    citizen = citizens.get(citizen_id) or abort(404)
    form = AppealForm()
    form.call_id.choices = [("", "")] + [(c.id, c.id) for c in _waiting_calls(citizen.id)]
    target = request.form.get("attach_to") or ""
    upload = form.recording.data
    answers = {purpose: getattr(form, name).data == "yes" for name, purpose in CONSENT_FIELDS.items()
               if getattr(form, name).data in ("yes", "no")}
    has_file = bool(upload and getattr(upload, "filename", ""))
    try:
        done = repeats.attach_call(current_user, target, citizen_id=citizen.id,
                                   call_id=None if has_file else (form.call_id.data or None),
                                   recording=(upload.stream, upload.filename) if has_file else None,
                                   consents=answers, consent_offset_s=consent_moment(form))
    except (services.AppealError, calls.CallError, consent.ConsentError, NotFound, MomentError) as exc:
        flash(_("Звонок не добавлен: %(error)s.", error=exc), "error")
        return redirect(url_for("appeals.appeal_new", citizen_id=citizen.id))
    if done.call is not None:
        flash(_("Звонок добавлен к обращению № %(number)s; новое обращение не открыто.", number=done.appeal.number),
              "success")
    else:
        flash(_("Новое обращение не открыто: заявитель обращается по № %(number)s.", number=done.appeal.number), "info")
    if done.consent_error:
        flash(_("Ответ о согласии не записан: %(error)s.", error=done.consent_error), "error")
    return redirect(url_for("appeals.appeal_detail", appeal_id=done.appeal.id))


def _citizen_house(citizen):
    """The citizen's house in the buildings register, to prefill the form: the house of their
    address (decrypted and logged, :func:`crm.citizens.services.address_for_matching`), else the
    house of their latest appeal that named one; None when neither is in the register."""
    address = citizens.address_for_matching(citizen, purpose="appeal_processing")
    house = buildings.find(address) if address else None
    if house is None:
        latest = next((a.building_id for a in services.for_citizen(citizen.id) if a.building_id), None)
        house = buildings.get(latest)
    return house


def _building_picked(form) -> bool:
    """Resolve the form's house: the id the suggestions' script set (``building_id``), else the
    typed address when it is one building of the register (the form without the script). False
    (and an error on the field) when the typed address is not in the register."""
    raw, text = (form.building_id.data or "").strip(), (form.building.data or "").strip()
    if raw.isdigit() and buildings.get(int(raw)) is not None:
        form.building_id.data = int(raw)
        return True
    form.building_id.data = None
    if not text:
        return True
    found = buildings.find(text)
    if found is None:
        form.building.errors.append(_("Дома нет в реестре: выберите его из подсказок или оставьте поле пустым."))
        return False
    form.building_id.data = found.id
    return True

#: The list page's filters that may be in its URL (no personal data): everything but ``q``.
LIST_PARAMS = ("status", "category", "topic", "overdue", "due_soon", "repeat", "date_from", "date_to", "sort")


def _list_params(src) -> dict:
    """The list page's filters as sent (``request.args`` or ``request.form``), without ``q`` and ``cursor``:
    what the paging links and the form carry back."""
    out = {}
    for name in LIST_PARAMS:
        values = [v for v in src.getlist(name) if v] if name in ("status", "category", "topic") else src.get(name)
        if values:
            out[name] = values
    return out


def _list_filters(params: dict, q: str | None) -> services.Filters:
    """:class:`crm.appeals.services.Filters` of the page's parameters. Raises
    :class:`crm.appeals.services.SearchError` with a message for the page."""
    for code in params.get("status", ()):
        if code not in STATUSES:
            raise services.SearchError(_("Неизвестное значение фильтра «статус»: «%(value)s». Выберите статус из списка.",
                                         value=code[:40]), "status")
    days = {}
    for name in ("date_from", "date_to"):
        if params.get(name):
            try:
                days[name] = date.fromisoformat(params[name])
            except ValueError:
                raise services.SearchError(_("«%(value)s» — не дата в формате ГГГГ-ММ-ДД", value=params[name][:40]),
                                           name) from None
    repeat = {"yes": True, "no": False}.get(params.get("repeat") or "")
    return services.Filters(
        q=q or None, statuses=tuple(params.get("status", ())), categories=tuple(params.get("category", ())),
        topics=tuple(params.get("topic", ())), overdue=params.get("overdue") == "1",
        due_soon=params.get("due_soon") == "1", repeat=repeat,
        created_from=day_start(days["date_from"]) if "date_from" in days else None,
        created_to=day_start(days["date_to"] + timedelta(days=1)) if "date_to" in days else None)


def _appeal_list_page(params: dict, q: str | None, cursor: str | None):
    """The list page: the filters, one page of appeals nearest deadline first, «N–M из T» and the next
    page. ``q`` (a number, phone, name or address) comes only in a POST: the page's paging forms post it
    back, so it never enters a URL. A phone search lists the citizens with that phone, each a link to
    their card (their look-up and the names shown are logged)."""
    sort = params.get("sort") if params.get("sort") in services.SORTS else "deadline"
    found = []
    try:
        # an executor sees only the appeals handed over to it (services.visibility)
        page = services.search(_list_filters(params, q), sort=sort, limit=PAGE_SIZE, cursor=cursor, user=current_user)
        if page.kind == "phone" and current_user.role != "executor":
            found = [citizens.view(c, purpose="appeal_processing") for c in citizens.find_by_phone(q)]
    except services.SearchError as exc:
        return render_template("appeals/list.html", appeals=[], page=None, params=params, q=q, found=[],
                               status=(params.get("status") or [None])[0], filter_error=str(exc)), 400
    return render_template("appeals/list.html", appeals=page.items, page=page, params=params, q=q, found=found,
                           status=(params.get("status") or [None])[0], page_size=PAGE_SIZE)


PAGE_SIZE = 50


@bp.get("/appeals")
@roles_required(*OPERATORS, "supervisor", "executor")
def appeal_list():
    """Appeals by the filters in the URL (none personal); a ``q`` in a URL is ignored (searches post it)."""
    return _appeal_list_page(_list_params(request.args), None, request.args.get("cursor") or None)


@bp.post("/appeals")
@roles_required(*OPERATORS, "supervisor", "executor")
def appeal_search():
    """The list page's search form and its paging forms: the filters with ``q`` in the POST body."""
    q = " ".join((request.form.get("q") or "").split())[:200]
    return _appeal_list_page(_list_params(request.form), q or None, request.form.get("cursor") or None)


def _open_first(appeal) -> tuple:
    nearest = services.next_deadline(appeal)
    return (appeal.status not in services.ACTIVE_STATUSES,
            nearest.due if nearest else services.NO_DEADLINE, -appeal.created_at.timestamp())


@bp.get("/citizens/<citizen_id>")
@roles_required(*OPERATORS, "supervisor")
def citizen_card(citizen_id):
    """The citizen's card (masked; the read logged): their appeals, open ones first (nearest deadline
    first), their calls and consents, and «Новое обращение» (access key N) for operators."""
    citizen = citizens.get(citizen_id) or abort(404)
    card = citizens.view(citizen, purpose="appeal_processing")
    rows = sorted(services.for_citizen(citizen.id), key=_open_first)
    return render_template("appeals/citizen.html", citizen=card, appeals=rows, calls=calls.for_citizen(citizen.id),
                           consents=consent.for_citizen(citizen.id), active_statuses=services.ACTIVE_STATUSES)


def _detail(appeal, reveal=False, *, fform=None, cform=None, status=200):
    data = services.view(appeal, reveal=reveal)
    allowed = [s for s in TRANSITIONS.get(appeal.status, ()) if s != "duplicate"]  # the duplicate form links one
    tform = TransitionForm(formdata=None, expected_status=appeal.status)
    tform.to_status.choices = [(s, _(STATUSES[s])) for s in allowed]
    dform = DuplicateForm(formdata=None, expected_status=appeal.status) \
        if "duplicate" in TRANSITIONS.get(appeal.status, ()) else None
    original = services.get(appeal.duplicate_of_id) if appeal.duplicate_of_id else None
    active = {code for code in ("sms_notifications", "email_notifications", "call_recording_qa", "csat_survey")
              if consent.active_consent(appeal.citizen_id, code, consent.DEFAULT_VERSION.get(code)) is not None}
    # the sections higher features add (crm.dispatch: the hand-over, the executor's actions)
    panels = [p for p in hooks.fire("appeal.page", appeal=appeal, user=current_user) if p]
    return render_template("appeals/detail.html", appeal=data, tform=tform, dform=dform, original=original,
                           cform=cform or CommentForm(formdata=None),
                           calls=calls.for_appeal(appeal.id),
                           rform=RecordingForm(), consents=consent.for_citizen(appeal.citizen_id),
                           active_purposes=active, fform=fform or RectifyForm(formdata=None), panels=panels,
                           notifications=notify.for_appeal(appeal.id)), status


@bp.get("/appeals/<appeal_id>")
@roles_required(*OPERATORS, "supervisor", "executor")
def appeal_detail(appeal_id):
    return _detail(services.get_for(current_user, appeal_id) or abort(404))


@bp.post("/appeals/<appeal_id>/reveal")
@roles_required(*OPERATORS)
def appeal_reveal(appeal_id):
    return _detail(services.get(appeal_id) or abort(404), reveal=True)


@bp.post("/appeals/<appeal_id>/citizen")
@roles_required("operator")
def citizen_rectify(appeal_id):
    """The citizen asks on the call to correct their name, phone, e-mail or address (152-ФЗ ст. 21 ч. 2):
    the fields filled in replace the old values (:func:`crm.citizens.services.rectify`, logged without the
    values). A bad value brings the page back (422) with the error under its field."""
    appeal = services.get(appeal_id) or abort(404)
    form = RectifyForm()
    if form.validate_on_submit():
        try:
            changed = citizens.rectify(citizens.get(appeal.citizen_id), form.changes(), user=current_user,
                                       purpose="appeal_processing", appeal_id=appeal.id,
                                       confirm_duplicate=form.confirm_duplicate.data)
        except citizens.CitizenError as exc:
            getattr(form, exc.field or "", form.full_name).errors.append(str(exc))
            form.phone_in_use = isinstance(exc, citizens.PhoneInUse)
        else:
            flash(_("Данные заявителя исправлены.") if changed else _("Изменений нет."),
                  "success" if changed else "info")
            return redirect(url_for("appeals.appeal_detail", appeal_id=appeal.id))
    return _detail(appeal, fform=form, status=422)


@bp.post("/appeals/<appeal_id>/transition")
@roles_required(*OPERATORS)
def appeal_transition(appeal_id):
    """A step of the lifecycle from the appeal page. The form carries the status the page showed
    (``expected_status``): when the appeal has left it (another operator, or the second click of a double
    click) nothing changes and the page comes back (409) saying so in the user's language."""
    appeal = services.get(appeal_id) or abort(404)
    form = TransitionForm()
    form.to_status.choices = [(s, _(STATUSES[s])) for s in STATUSES]
    if form.validate_on_submit():
        try:
            services.transition(appeal, form.to_status.data, user=current_user, comment=form.comment.data,
                                visibility=form.visibility.data or "internal",
                                expected_status=form.expected_status.data or None)
            flash(_("Статус: %(status)s.", status=_(STATUSES[form.to_status.data])), "success")
        except services.StaleTransition as exc:
            flash(_stale_message(exc), "error")
            return _detail(services.get(appeal_id), status=409)
        except services.AppealError as exc:
            flash(str(exc), "error")
    return redirect(url_for("appeals.appeal_detail", appeal_id=appeal_id))


@bp.post("/appeals/<appeal_id>/comment")
@roles_required(*OPERATORS)
def appeal_comment(appeal_id):
    """A comment without a change of status, internal or also for the citizen. A bad one brings the page
    back (422) with the error under the field."""
    appeal = services.get(appeal_id) or abort(404)
    form = CommentForm()
    if form.validate_on_submit():
        try:
            services.add_comment(appeal, form.text.data, user=current_user, visibility=form.visibility.data)
        except services.AppealError as exc:
            form.text.errors.append(str(exc))
        else:
            flash(_("Комментарий добавлен."), "success")
            return redirect(url_for("appeals.appeal_detail", appeal_id=appeal.id))
    return _detail(appeal, cform=form, status=422)


def _stale_message(exc) -> str:
    return _("Статус обращения уже изменился: на странице было «%(expected)s», сейчас «%(current)s». "
             "Переход в «%(to)s» не выполнен. Проверьте историю ниже и повторите, если он ещё нужен.",
             expected=_(STATUSES[exc.expected]), current=_(STATUSES[exc.current]), to=_(STATUSES[exc.to_status]))


@bp.post("/appeals/<appeal_id>/duplicate")
@roles_required(*OPERATORS)
def appeal_duplicate(appeal_id):
    """Close the appeal as a duplicate of the appeal numbered ``original_number``, merging it when asked
    (:func:`crm.appeals.services.mark_duplicate`). Refusals come back on the page in the user's language."""
    appeal = services.get(appeal_id) or abort(404)
    form = DuplicateForm()
    if not form.validate_on_submit():
        flash(_("Укажите номер исходного обращения."), "error")
        return redirect(url_for("appeals.appeal_detail", appeal_id=appeal_id))
    original = services.by_number(form.original_number.data)
    if original is None:
        flash(_("Обращение № %(number)s не найдено.", number=form.original_number.data.strip()[:20]), "error")
        return redirect(url_for("appeals.appeal_detail", appeal_id=appeal_id))
    try:
        services.mark_duplicate(appeal, original.id, user=current_user, merge=form.merge.data,
                                comment=form.comment.data, expected_status=form.expected_status.data or None)
    except services.StaleTransition as exc:
        flash(_stale_message(exc), "error")
        return _detail(services.get(appeal_id), status=409)
    except services.AppealError as exc:
        flash(str(exc), "error")
    else:
        flash(_("Обращение объединено с № %(number)s.", number=original.number) if form.merge.data
              else _("Обращение отмечено дубликатом № %(number)s.", number=original.number), "success")
    return redirect(url_for("appeals.appeal_detail", appeal_id=appeal_id))


@bp.post("/appeals/<appeal_id>/calls")
@roles_required(*OPERATORS)
def appeal_add_call(appeal_id):
    appeal = services.get(appeal_id) or abort(404)
    form = RecordingForm()
    if form.validate_on_submit():
        upload = form.recording.data
        try:
            calls.store_recording(upload.stream, upload.filename, appeal=appeal, operator_id=current_user.id)
            flash(_("Запись звонка принята и поставлена на расшифровку."), "success")
        except calls.CallError as exc:
            flash(str(exc), "error")
    else:
        flash(_("Выберите файл записи."), "error")
    return redirect(url_for("appeals.appeal_detail", appeal_id=appeal.id))


@bp.post("/consents/<consent_id>/withdraw")
@roles_required(*OPERATORS)
def consent_withdraw(consent_id):
    event = consent.get(consent_id) or abort(404)
    consent.withdraw(event, channel="call", user_id=current_user.id)
    flash(_("Согласие отозвано."), "success")
    return redirect(local_target(request.form.get("next"), url_for("appeals.operator_home")))


@bp.post("/appeals/<appeal_id>/consents")
@roles_required("operator", "admin")
def quick_consent(appeal_id):
    """The operator's one click during a call: record the citizen's answer for a purpose, with the
    appeal's latest call (or the one given, and the moment in it) as evidence. Back to the appeal."""
    appeal = services.get(appeal_id) or abort(404)
    form = QuickConsentForm()
    if form.validate_on_submit():
        try:
            event = consent.record(citizens.get(appeal.citizen_id), form.purpose.data, channel="call",
                                   given=form.given.data != "no", operator_id=current_user.id, appeal_id=appeal.id,
                                   evidence_call_id=form.call_id.data or None, evidence_offset_s=form.offset_s.data)
            if getattr(event, "repeated", False):  # a second click: the consent in force is kept, no new event
                flash(_("Согласие уже получено."), "info")
            else:
                flash(_("Согласие записано.") if form.given.data != "no" else _("Отказ записан."), "success")
        except consent.ConsentError as exc:
            flash(str(exc), "error")
    else:
        flash(_("Не удалось записать согласие: проверьте форму."), "error")
    return redirect(url_for("appeals.appeal_detail", appeal_id=appeal.id))


@self_bp.get("/appeals")
def my_appeals():
    """The citizen's appeals with their statuses and the comments written for them (never the internal
    ones); signed in on the self-service page. Each read of comments is logged as the citizen's."""
    scope = selfservice.session_scope()[0]
    if not scope:
        flash(_("Войдите по ссылке или коду из SMS."), "error")
        return redirect(url_for("selfservice.start"))
    return render_template("appeals/self_appeals.html",
                           appeals=services.for_self_service(scope, actor=selfservice.CITIZEN))
