"""The calendar with the administrators' overrides, and their changes.

:func:`calendar` is the :class:`~crm.clocks.workcalendar.Calendar` every deadline of the application
should be computed on: the ``holidays`` package's Russian calendar, the hours of
``CRM_WORKING_HOURS`` and the rows of ``calendar_overrides`` on top. :func:`set_override` and
:func:`remove_override` (administrators only) change the rows, each change in the access log."""
from __future__ import annotations

from datetime import date

from flask import current_app, g, has_app_context

from crm.clocks.workcalendar import DEFAULT_HOURS, OVERRIDE_KINDS, Calendar, Override, WorkingHours
from crm.clocks.models import CalendarOverride
from crm.db import atomic, db, utcnow
from crm.errors import InvalidInput, NotFound
from crm.i18n import lazy_gettext as _l
from crm.security import audit
from crm.security.permissions import require_role

KIND_RU = {"holiday": "нерабочий день", "working": "рабочий день", "shortened": "сокращённый рабочий день"}


def working_hours() -> WorkingHours:
    """``CRM_WORKING_HOURS`` parsed (:meth:`WorkingHours.parse`); the default outside an app."""
    if not has_app_context():
        return DEFAULT_HOURS
    return WorkingHours.parse(current_app.config["CRM_WORKING_HOURS"])


def overrides(start: date | None = None, end: date | None = None) -> list[CalendarOverride]:
    """The override rows, by day (``start``/``end`` inclusive bounds, optional)."""
    q = db.select(CalendarOverride).order_by(CalendarOverride.day)
    if start is not None:
        q = q.where(CalendarOverride.day >= start)
    if end is not None:
        q = q.where(CalendarOverride.day <= end)
    return list(db.session.execute(q).scalars())


def calendar() -> Calendar:
    """The calendar deadlines are computed on: the package's, ``CRM_WORKING_HOURS``, and every
    override row. Made once per request (``g``) or per call outside one."""
    cached = g.get("crm_calendar") if has_app_context() else None
    if cached is not None:
        return cached
    cal = Calendar([Override(r.day, r.kind, r.hours) for r in overrides()], hours=working_hours())
    if has_app_context():
        g.crm_calendar = cal
    return cal


def _actor(user) -> audit.Actor:
    """The administrator making the change, named in the log entry also from the command line
    (``crm calendar``), where no one is signed in."""
    return audit.Actor(user.id, user.username, user.role)


@atomic
def set_override(user, day: date, kind: str, *, hours: float | None = None, note: str | None = None) -> CalendarOverride:
    """Say what ``day`` is (an administrator): ``kind`` one of ``holiday``, ``working``,
    ``shortened`` (``hours``: its length, default one hour less). Replaces an earlier override of
    the day; logged as ``calendar.override``; commits. Raises :class:`crm.errors.InvalidInput`."""
    require_role(user, "admin")
    if kind not in OVERRIDE_KINDS:
        raise InvalidInput(_l("неизвестный вид дня «%(kind)s»: нерабочий (holiday), рабочий (working) или "
                              "сокращённый (shortened)", kind=kind), code="invalid_kind", field="kind")
    if hours is not None and (kind != "shortened" or not 0 < hours <= 24):
        raise InvalidInput(_l("продолжительность указывается только для сокращённого дня, от 0 до 24 часов"),
                           code="invalid_hours", field="hours")
    hours = float(hours) if hours is not None else None
    row = db.session.get(CalendarOverride, day) or CalendarOverride(day=day)
    row.kind, row.hours = kind, hours
    row.note = (note or "").strip()[:300] or None
    row.updated_by, row.updated_at = user.id, utcnow()
    db.session.add(row)
    audit.record("calendar.override", detail=f"{day.isoformat()}: {kind}" + (f" {hours:g} h" if hours else ""),
                 actor=_actor(user))
    db.session.commit()
    g.pop("crm_calendar", None)
    return row


@atomic
def remove_override(user, day: date) -> None:
    """Drop the override of ``day`` (an administrator); logged; commits. Raises
    :class:`crm.errors.NotFound` when there is none."""
    require_role(user, "admin")
    override = db.session.get(CalendarOverride, day)
    if override is None:
        raise NotFound(_l("для %(day)s нет особой отметки в календаре", day=day.isoformat()), code="not_found")
    db.session.delete(override)
    audit.record("calendar.override", detail=f"{day.isoformat()}: removed", actor=_actor(user))
    db.session.commit()
    g.pop("crm_calendar", None)
