"""Time helpers of the core layer: the hotline's time zone, local days, and the Russian working-day
calendar.

Timestamps are stored and passed in UTC (``DateTime(timezone=True)``; SQLite returns them naive and
``crm.db.UTCDateTime`` attaches UTC on read). "Which day" questions — a report's period, a legal
deadline in working days, a date shown to a person — are answered in ``CRM_TIMEZONE`` (default
``Europe/Moscow``), read from the application's configuration, never hard-coded.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from flask import current_app, has_app_context

from crm.errors import InvalidInput
from crm.i18n import lazy_gettext as _l

DEFAULT_TIMEZONE = "Europe/Moscow"
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_tz() -> ZoneInfo:
    """The hotline's time zone: ``CRM_TIMEZONE`` of the current app (``Europe/Moscow`` outside one)."""
    name = current_app.config["CRM_TIMEZONE"] if has_app_context() else None
    return _zone(name or DEFAULT_TIMEZONE)


def local_date(moment: datetime) -> date:
    """The calendar day of an aware ``moment`` in the hotline's time zone."""
    return moment.astimezone(local_tz()).date()


def day_start(day: date) -> datetime:
    """The UTC instant at which ``day`` begins in the hotline's time zone."""
    return datetime.combine(day, time.min, tzinfo=local_tz()).astimezone(timezone.utc)


def day_end(day: date) -> datetime:
    """23:59:59 of ``day`` in the hotline's time zone (aware, in that zone): the end of a legal
    deadline counted in days."""
    return datetime.combine(day, time(23, 59, 59), local_tz())


#: The years a date typed into the CRM may have. Outside them the arithmetic of the layers below breaks
#: (year 1 in Moscow is before ``datetime.min`` in UTC: ``OverflowError``, a 500); no appeal, report
#: or incident of a hotline is dated there.
MIN_YEAR, MAX_YEAR = 1900, 2999


def out_of_range(value: date | datetime) -> InvalidInput | None:
    """The error for a date or date-time outside :data:`MIN_YEAR` … :data:`MAX_YEAR` (an aware
    date-time is judged in UTC), or None when it is inside."""
    try:
        year = value.astimezone(timezone.utc).year if isinstance(value, datetime) and value.tzinfo else value.year
    except OverflowError:
        year = 0
    if MIN_YEAR <= year <= MAX_YEAR:
        return None
    return InvalidInput(_l("дата вне допустимого диапазона: годы %(min)s–%(max)s", min=MIN_YEAR, max=MAX_YEAR),
                        code="date_out_of_range")


def parse_day(value: str, field: str) -> date:
    """``YYYY-MM-DD`` → date, years :data:`MIN_YEAR` … :data:`MAX_YEAR`. Raises
    :class:`crm.errors.InvalidInput` naming ``field``."""
    try:
        if not _DAY.fullmatch(value or "") or not value.isascii():
            raise ValueError
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(_l("«%(value)s» — не дата в формате ГГГГ-ММ-ДД", value=(value or '')[:40]), field=field,
                           code=f"invalid_{field}") from None
    if (err := out_of_range(day)) is not None:
        err.field, err.code = field, f"invalid_{field}"
        raise err
    return day


# --- the Russian working-day calendar --------------------------------------------------------------
# From the ``holidays`` package: the holidays of ТК РФ ст. 112 and each year's transfer decree
# (days off moved, working Saturdays), no year table kept here. The administrators' overrides live a
# layer up: crm.clocks (crm.clocks.services.calendar) is the calendar deadlines should be computed on.

@lru_cache(maxsize=1)
def _russian_days():
    return holidays.country_holidays("RU")


def is_working_day(day: date) -> bool:
    """True for a Russian working day (the ``holidays`` package's calendar, without overrides)."""
    return _russian_days().is_working_day(day)


def add_working_days(start: datetime, days: int) -> datetime:
    """The end (23:59:59 local time, returned in ``start``'s zone) of the ``days``-th working day
    after ``start``'s local day (the package's calendar; :func:`crm.clocks.deadlines.add_working_days`
    adds the administrators' overrides)."""
    local = start.astimezone(local_tz()).date()
    n = 0
    while n < days:
        local += timedelta(days=1)
        if is_working_day(local):
            n += 1
    return day_end(local).astimezone(start.tzinfo)
