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

from flask import current_app, has_app_context

from crm.errors import InvalidInput

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


def parse_day(value: str, field: str) -> date:
    """``YYYY-MM-DD`` → date. Raises :class:`crm.errors.InvalidInput` naming ``field``."""
    try:
        if not _DAY.fullmatch(value or ""):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"«{(value or '')[:40]}» — не дата в формате ГГГГ-ММ-ДД", field=field,
                           code=f"invalid_{field}") from None


# --- the Russian working-day calendar --------------------------------------------------------------
# Трудовой кодекс ст. 112 plus the government's yearly transfer decrees. ``HOLIDAYS`` are
# non-working weekdays; ``WORKING_WEEKENDS`` are transferred working Saturdays.

HOLIDAYS = {
    # 2025 (Постановление Правительства РФ от 04.10.2024 № 1335)
    *[date(2025, 1, d) for d in range(1, 9)], date(2025, 5, 1), date(2025, 5, 2), date(2025, 5, 8),
    date(2025, 5, 9), date(2025, 6, 12), date(2025, 6, 13), date(2025, 11, 3), date(2025, 11, 4),
    date(2025, 12, 31),
    # 2026 (Постановление Правительства РФ от 24.09.2025 № 1466)
    *[date(2026, 1, d) for d in range(1, 10)], date(2026, 2, 23), date(2026, 3, 9), date(2026, 5, 1),
    date(2026, 5, 11), date(2026, 6, 12), date(2026, 11, 4), date(2026, 12, 31),
    # 2027 (fixed holidays only until the decree is published)
    *[date(2027, 1, d) for d in range(1, 9)], date(2027, 2, 23), date(2027, 3, 8), date(2027, 5, 3),
    date(2027, 5, 10), date(2027, 6, 14), date(2027, 11, 4),
}
WORKING_WEEKENDS = {date(2025, 11, 1)}


def is_working_day(day: date) -> bool:
    """True for a Russian working day."""
    if day in WORKING_WEEKENDS:
        return True
    return day.weekday() < 5 and day not in HOLIDAYS


def add_working_days(start: datetime, days: int) -> datetime:
    """The end (23:59:59 local time, returned in ``start``'s zone) of the ``days``-th working day
    after ``start``'s local day."""
    local = start.astimezone(local_tz()).date()
    n = 0
    while n < days:
        local += timedelta(days=1)
        if is_working_day(local):
            n += 1
    return day_end(local).astimezone(start.tzinfo)
