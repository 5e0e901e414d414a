"""The Russian working-day calendar (Трудовой кодекс ст. 112 plus the government's yearly
transfer decrees). ``HOLIDAYS`` are non-working weekdays; ``WORKING_WEEKENDS`` are transferred
working Saturdays. Extend the tables each year when the decree is published."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MOSCOW = ZoneInfo("Europe/Moscow")

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
    """The end (23:59:59 Moscow time, as UTC) of the ``days``-th working day after ``start``'s day."""
    local = start.astimezone(MOSCOW).date()
    n = 0
    while n < days:
        local += timedelta(days=1)
        if is_working_day(local):
            n += 1
    return datetime.combine(local, time(23, 59, 59), MOSCOW).astimezone(start.tzinfo)
