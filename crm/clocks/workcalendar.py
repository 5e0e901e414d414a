"""The Russian working calendar: which days are worked, and for which hours.

Days come from the ``holidays`` package (``holidays.country_holidays("RU")``): the non-working
public holidays of the Labour Code (ТК РФ ст. 112 ч. 1), the days off the government moves each
year by decree (ст. 112 ч. 5; e.g. 2025: 4 January → 2 May, 1 November → 3 November) and the
weekend days that become working days by those transfers (``weekend_workdays``: Saturday
1 November 2025). No year table is kept here: a new year's decree arrives with a new release of
the package. On top of it the administrators' overrides (:class:`Override`, the table
``calendar_overrides`` read by :func:`crm.clocks.services.calendar`) win for their day: a regional
holiday, a working day the package does not know yet, a shortened day of other hours.

Hours: :class:`WorkingHours` per weekday; the default (:data:`DEFAULT_HOURS`) is Monday–Thursday
08:00–17:00 and Friday 08:00–15:45, the common Russian five-day schedule of 40 hours a week (ТК РФ
ст. 91: at most 40 hours; Monday–Thursday 9 h and Friday 7 h 45 min, each with a 45-minute meal
break, ст. 108, not counted) as management companies' and dispatch offices' internal rules set it;
the break is not cut out here (the hotline answers through it), give two windows to cut it out.
A pre-holiday day is one hour shorter (ТК РФ ст. 95 ч. 1): the working day right before a
non-working public holiday of ст. 112 ч. 1, and a transferred working weekend day that took the place
of such a day (1 November 2025 took the place of Monday 3 November, the eve of 4 November, and is
shortened; 7 May 2025 precedes a transferred day off, 8 May, and is not). That reproduces the
government's production calendars: 2025 — 7 March, 30 April, 11 June, 1 November; 2026 — 30 April,
8 May, 11 June, 3 November. A transferred working weekend day keeps the hours of the weekday it
replaces.

Everything here is about local calendar days and wall-clock times; :mod:`crm.clocks.deadlines` turns
them into UTC instants in ``CRM_TIMEZONE``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Iterable, Mapping

import holidays

#: The non-working public holidays of ТК РФ ст. 112 ч. 1 as (month, day): the law's list, the same
#: every year (the package's list also holds each year's transferred days off, which are not
#: holidays for ст. 95).
STATUTORY_HOLIDAYS = frozenset({(1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (1, 6), (1, 7), (1, 8), (2, 23), (3, 8),
                                (5, 1), (5, 9), (6, 12), (11, 4)})
#: Override kinds: a day off, a working day (its weekday's hours), a shortened working day.
OVERRIDE_KINDS = ("holiday", "working", "shortened")
#: Hours a pre-holiday day is shortened by (ТК РФ ст. 95 ч. 1).
PRE_HOLIDAY_CUT = timedelta(hours=1)

Window = tuple[time, time]


@dataclass(frozen=True)
class Override:
    """An administrator's word on one day. ``kind``: one of :data:`OVERRIDE_KINDS`; ``hours``: for
    ``shortened``, how long the day is (hours from its first window's start; ``None``: one hour less
    than its weekday's hours)."""

    day: date
    kind: str
    hours: float | None = None

    def __post_init__(self):
        if self.kind not in OVERRIDE_KINDS:
            raise ValueError(f"unknown override kind {self.kind!r}")
        if self.hours is not None and not (0 < self.hours <= 24):
            raise ValueError("hours must be within (0, 24]")


_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class WorkingHours:
    """Working windows per weekday (0 Monday … 6 Sunday), each ``(start, end)`` local wall-clock
    times, in order, not overlapping. A weekday without windows is not worked (unless a transfer or an
    override makes the day a working day: then it has the hours of the weekday it replaces, or
    Monday's)."""

    by_weekday: Mapping[int, tuple[Window, ...]] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: Mapping[str, str | Iterable[str]]) -> "WorkingHours":
        """From ``{"mon-thu": "08:00-17:00", "fri": "08:00-12:00,12:45-15:45"}`` (days ``mon`` …
        ``sun``, single or ``a-b`` ranges; windows ``HH:MM-HH:MM`` separated by commas; ``24:00``
        is the end of the day). Raises ``ValueError`` naming what is wrong."""
        by_weekday: dict[int, tuple[Window, ...]] = {}
        for days, windows in spec.items():
            parts = [p.strip().lower() for p in str(days).split("-")]
            if not 1 <= len(parts) <= 2 or any(p not in _WEEKDAYS for p in parts):
                raise ValueError(f"working hours: unknown days {days!r} (mon … sun, or a range like mon-thu)")
            first, last = _WEEKDAYS[parts[0]], _WEEKDAYS[parts[-1]]
            if last < first:
                raise ValueError(f"working hours: the range {days!r} runs backwards")
            items = windows.split(",") if isinstance(windows, str) else list(windows)
            parsed = tuple(_window(w) for w in items if str(w).strip())
            for a, b in zip(parsed, parsed[1:]):
                if b[0] < a[1]:
                    raise ValueError(f"working hours of {days!r}: windows overlap or are out of order")
            for wd in range(first, last + 1):
                by_weekday[wd] = parsed
        return cls(by_weekday)

    def windows(self, weekday: int) -> tuple[Window, ...]:
        return tuple(self.by_weekday.get(weekday, ()))


def _window(text: str) -> Window:
    m = _RANGE.match(str(text))
    if not m:
        raise ValueError(f"working hours: {text!r} is not HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
        raise ValueError(f"working hours: {text!r} is not a time range")
    start, end = time(h1, m1), (time.max if h2 == 24 else time(h2, m2))
    if end <= start:
        raise ValueError(f"working hours: {text!r} ends before it starts")
    return start, end


#: Monday–Thursday 08:00–17:00, Friday 08:00–15:45 (see the module's docstring for the source).
DEFAULT_HOURS = WorkingHours.parse({"mon-thu": "08:00-17:00", "fri": "08:00-15:45"})


class Calendar:
    """The working calendar of one country (Russia) with overrides: days and their hours.

    ``overrides``: :class:`Override` s (or a mapping day → Override), which win for their day;
    ``hours``: :class:`WorkingHours` (default :data:`DEFAULT_HOURS`). Immutable once made; cheap to
    query (the package computes a year once)."""

    def __init__(self, overrides: Iterable[Override] | Mapping[date, Override] = (),
                 hours: WorkingHours = DEFAULT_HOURS):
        items = overrides.values() if isinstance(overrides, Mapping) else overrides
        self.overrides: dict[date, Override] = {o.day: o for o in items}
        self.hours = hours
        self._days = holidays.country_holidays("RU")  # grows by the years asked for

    # --- days ----------------------------------------------------------------------------------

    def _package_working(self, day: date) -> bool:
        return self._days.is_working_day(day)

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is worked: the override for it, else the package's calendar (weekends and
        holidays off, transferred working weekend days on)."""
        override = self.overrides.get(day)
        if override is not None:
            return override.kind != "holiday"
        return self._package_working(day)

    def replaced_weekday(self, day: date) -> date | None:
        """For a weekend day made a working day by a transfer decree, the weekday whose place it
        took (its day off, e.g. 1 November 2025 → 3 November 2025); else None."""
        _ = day in self._days  # computes the day's year, which fills ``weekend_workdays``
        if day not in self._days.weekend_workdays:
            return None
        for entry in getattr(self._days, "special_public_holidays", {}).get(day.year, ()):
            # (month, day, month, day): the day off, then the working day it was moved from
            if len(entry) == 4 and all(isinstance(x, int) for x in entry):
                off_month, off_day, from_month, from_day = entry
                if (from_month, from_day) == (day.month, day.day):
                    return date(day.year, off_month, off_day)
        return None

    def is_statutory_holiday(self, day: date) -> bool:
        """Whether ``day`` is a non-working public holiday of ТК РФ ст. 112 ч. 1 (not a transferred
        day off), whatever day of the week it falls on."""
        return (day.month, day.day) in STATUTORY_HOLIDAYS

    def is_shortened(self, day: date) -> bool:
        """Whether ``day`` is a working day one hour shorter (ТК РФ ст. 95 ч. 1; see the module's
        docstring), or an override says it is shortened."""
        override = self.overrides.get(day)
        if override is not None:
            return override.kind == "shortened"
        if not self._package_working(day):
            return False
        if self.is_statutory_holiday(day + timedelta(days=1)):
            return True
        replaced = self.replaced_weekday(day)
        return replaced is not None and self.is_statutory_holiday(replaced + timedelta(days=1))

    # --- hours ---------------------------------------------------------------------------------

    def windows(self, day: date) -> tuple[Window, ...]:
        """The working windows of ``day`` (local wall-clock ``(start, end)``), empty on a day off.
        A transferred working weekend day has the hours of the weekday it replaces (Monday's when
        unknown); a shortened day ends :data:`PRE_HOLIDAY_CUT` earlier, or lasts the override's
        ``hours``."""
        if not self.is_working_day(day):
            return ()
        windows = self.hours.windows(day.weekday())
        if not windows:
            replaced = self.replaced_weekday(day)
            windows = self.hours.windows(replaced.weekday() if replaced else 0)
        if not windows:
            return ()
        if not self.is_shortened(day):
            return windows
        override = self.overrides.get(day)
        if override is not None and override.hours is not None:
            return _cut_to(windows, timedelta(hours=override.hours))
        return _cut_to(windows, _length(windows) - PRE_HOLIDAY_CUT)


def _seconds(t: time) -> float:
    if t == time.max:
        return 86400.0
    return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond / 1e6


def _length(windows: tuple[Window, ...]) -> timedelta:
    return timedelta(seconds=sum(_seconds(b) - _seconds(a) for a, b in windows))


def _cut_to(windows: tuple[Window, ...], length: timedelta) -> tuple[Window, ...]:
    """The first ``length`` of working time of ``windows``."""
    left = max(length.total_seconds(), 0.0)
    out = []
    for a, b in windows:
        span = _seconds(b) - _seconds(a)
        if left <= 0:
            break
        if span <= left:
            out.append((a, b))
            left -= span
        else:
            end = _seconds(a) + left
            out.append((a, (datetime.min + timedelta(seconds=end)).time()))
            left = 0
    return tuple(out)
