"""Deadline arithmetic on the Russian calendar, and clocks as data.

A :class:`Clock` says what starts it, what stops it, how long it runs, on which calendar, and which
states pause it; :data:`DEFAULT_CLOCKS` are the hotline's and the law's. The functions are plain and
pure: they take and return timezone-aware instants (returned in UTC), and count days and hours in the
hotline's zone (``tz``, default ``CRM_TIMEZONE`` through :func:`crm.timeutil.local_tz`) on a
:class:`~crm.clocks.workcalendar.Calendar` (default: the package's calendar without overrides;
:func:`crm.clocks.services.calendar` adds the administrators' overrides).

Calendar kinds (:data:`CALENDAR_KINDS`):

- ``24x7``: elapsed time (emergencies: ПП РФ № 416 п. 13).
- ``working_hours``: working time only, in the calendar's windows (:func:`add_working_time`).
- ``working_days``: the end of the N-th working day after the day the clock started
  (:func:`add_working_days`; a term counted in days begins on the next day, ГК РФ ст. 191).
- ``calendar_days``: the end of the N-th day after the start day; when that day is not a working
  day, the end of the next working day (ГК РФ ст. 193) — the days of 59-ФЗ.

Pauses (:func:`due`): time in a pause does not count. For ``24x7`` and ``working_hours`` the
deadline moves by the (working) time paused before it; for the day kinds a day counts unless the
clock was paused for the whole of it (local midnight to midnight) — a clock that counts days only
notices whole days. A pause still open (``end`` None) that began before the clock ran out leaves the
deadline unknown: :func:`due` answers None and :func:`state` ``paused``.

Cycles (:func:`cycles`): a clock runs in cycles over an object's events; re-opening starts a new
cycle judged on its own deadline, the earlier one keeps its verdict.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Callable, Iterable, Sequence
from zoneinfo import ZoneInfo

from crm.clocks.workcalendar import Calendar
from crm.i18n import N_
from crm.timeutil import local_tz

CALENDAR_KINDS = ("24x7", "working_hours", "working_days", "calendar_days")
STATES = ("running", "met", "overdue", "paused")
#: Warnings at 50 / 80 / 100 % of a clock (design.md, "Appeal lifecycle"), in per cent.
WARNING_LEVELS = (50, 80, 100)
#: The states' words on the pages.
STATE_LABELS = {"running": N_("идёт"), "met": N_("соблюдён"), "overdue": N_("просрочен"), "paused": N_("приостановлен")}
#: The statuses in which an appeal's work is over (its clocks that are still running stop, met).
FINISHED = ("resolved", "consulted", "closed", "rejected", "duplicate")

Pause = tuple[datetime, "datetime | None"]


@dataclass(frozen=True)
class Clock:
    """One clock, as data.

    ``code``: stable machine name; ``title``: Russian label (``N_``, translated where shown);
    ``duration``: how long it runs — elapsed (``24x7``) or working (``working_hours``) time, or whole
    days (``working_days``, ``calendar_days``: ``duration.days``); ``calendar``: one of
    :data:`CALENDAR_KINDS`; ``starts_on``: events that start a cycle when none runs; ``stops_on``:
    events that stop the running cycle; ``pauses_in``: events after which the running cycle is paused
    (until an event not in it); ``restarts``: every other event meets the running cycle and starts the
    next one (the status update); ``extension``: how much longer it may run, once, with a reason;
    ``categories``, ``topics``, ``channels``: what it applies to (None: everything); ``regime``:
    ``housing`` (a management company, ПП РФ № 416), ``authority`` (a public body, 59-ФЗ) or None
    (both); ``basis``: where the figure comes from."""

    code: str
    title: str
    duration: timedelta
    calendar: str = "24x7"
    starts_on: tuple[str, ...] = ("received",)
    stops_on: tuple[str, ...] = FINISHED
    pauses_in: tuple[str, ...] = ()
    restarts: bool = False
    extension: timedelta | None = None
    categories: tuple[str, ...] | None = None
    topics: tuple[str, ...] | None = None
    channels: tuple[str, ...] | None = None
    regime: str | None = None
    basis: str = ""

    def __post_init__(self):
        if self.calendar not in CALENDAR_KINDS:
            raise ValueError(f"clock {self.code}: unknown calendar {self.calendar!r}")
        if self.duration <= timedelta(0):
            raise ValueError(f"clock {self.code}: the duration must be positive")
        if self.calendar in ("working_days", "calendar_days") and self.duration != timedelta(days=self.duration.days):
            raise ValueError(f"clock {self.code}: a {self.calendar} clock runs whole days")

    def applies_to(self, *, category: str | None = None, topic: str | None = None, channel: str | None = None,
                   regime: str | None = None) -> bool:
        """Whether the clock runs for an object of this category, topic and channel under ``regime``."""
        return ((self.categories is None or category in self.categories)
                and (self.topics is None or topic in self.topics)
                and (self.channels is None or channel in self.channels)
                and (self.regime is None or regime is None or self.regime == regime))


WRITTEN_CHANNELS = ("letter", "email", "web")

#: The hotline's clocks (design.md, "Appeal lifecycle") and the law's.
DEFAULT_CLOCKS: tuple[Clock, ...] = (
    Clock("handover", N_("передать исполнителю"), timedelta(hours=1),
          stops_on=("escalated", "consulted", "rejected", "duplicate", *FINISHED),
          categories=("emergency", "routine", "complaint"), basis="регламент горячей линии (design.md): 1 ч"),
    # «консультация дана» closes the appeal on the call (nothing to update the citizen on)
    Clock("status_update", N_("обновить статус"), timedelta(hours=24), restarts=True,
          stops_on=("closed", "consulted", "rejected", "duplicate"), basis="регламент горячей линии (design.md): 24 ч"),
    Clock("emergency_localisation", N_("локализовать аварию"), timedelta(minutes=30), categories=("emergency",),
          regime="housing",
          basis="ПП РФ № 416, п. 13: локализация аварийного повреждения — в течение 30 минут с регистрации заявки"),
    Clock("blockage_cleared", N_("устранить засор"), timedelta(hours=2), categories=("emergency",),
          topics=("sewerage", "waste"), regime="housing",
          basis="ПП РФ № 416, п. 13: засор канализации или мусоропровода — в течение 2 часов с регистрации заявки"),
    Clock("written_answer", N_("ответить на письменное обращение"), timedelta(days=10), calendar="working_days",
          starts_on=("received", "reopened"), channels=WRITTEN_CHANNELS, regime="housing",
          basis="ПП РФ № 416, п. 34: ответ на письменное обращение — 10 рабочих дней"),
    Clock("registration", N_("зарегистрировать обращение"), timedelta(days=3), calendar="calendar_days",
          stops_on=("registered", *FINISHED), regime="authority",
          basis="59-ФЗ, ст. 8 ч. 2: регистрация в течение 3 дней с поступления"),
    Clock("answer", N_("дать ответ по существу"), timedelta(days=30), calendar="calendar_days",
          starts_on=("registered", "reopened"), extension=timedelta(days=30), regime="authority",
          basis="59-ФЗ, ст. 12 ч. 1: 30 дней с регистрации; ч. 2: продление не более чем на 30 дней, "
                "с уведомлением заявителя и причиной"),
    Clock("forward_by_competence", N_("направить по компетенции"), timedelta(days=7), calendar="calendar_days",
          starts_on=("registered",), stops_on=("forwarded", *FINISHED), regime="authority",
          basis="59-ФЗ, ст. 8 ч. 3: направить по компетенции в течение 7 дней с регистрации"),
)


def clocks_for(*, category: str | None = None, topic: str | None = None, channel: str | None = None,
               regime: str | None = None, clocks: Sequence[Clock] = DEFAULT_CLOCKS) -> list[Clock]:
    """The clocks of ``clocks`` that apply (:meth:`Clock.applies_to`)."""
    return [c for c in clocks if c.applies_to(category=category, topic=topic, channel=channel, regime=regime)]


# --- instants, zones, calendars --------------------------------------------------------------------

def _zone(tz) -> tzinfo:
    if tz is None:
        return local_tz()
    return ZoneInfo(tz) if isinstance(tz, str) else tz


def _aware(moment: datetime, name: str = "start") -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC)")
    return moment


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)


_DEFAULT_CALENDAR: Calendar | None = None


def default_calendar() -> Calendar:
    """The package's Russian calendar with no overrides and the default hours (one per process)."""
    global _DEFAULT_CALENDAR
    if _DEFAULT_CALENDAR is None:
        _DEFAULT_CALENDAR = Calendar()
    return _DEFAULT_CALENDAR


def _local(day: date, t: time, tz: tzinfo) -> datetime:
    if t == time.max:  # the window runs to midnight
        return datetime.combine(day + timedelta(days=1), time.min, tz)
    return datetime.combine(day, t, tz)


def _day_end(day: date, tz: tzinfo) -> datetime:
    """23:59:59 of ``day`` in ``tz``, in UTC (as :func:`crm.timeutil.day_end`)."""
    return _utc(datetime.combine(day, time(23, 59, 59), tz))


#: The longest walk through the calendar (days): a clock with no working time for ten years is a bug.
_HORIZON_DAYS = 3660


# --- working days and working time ------------------------------------------------------------------

def add_working_days(start: datetime, n: int, tz=None, *, calendar: Calendar | None = None) -> datetime:
    """The end (23:59:59 local) of the ``n``-th working day after ``start``'s local day, in UTC
    (``n`` 0: the end of ``start``'s own day). ``start``: aware; ``tz``: zone name or tzinfo (default
    ``CRM_TIMEZONE``). Raises ``ValueError`` for a naive ``start`` or a negative ``n``."""
    if n < 0:
        raise ValueError("n must not be negative")
    zone, cal = _zone(tz), calendar or default_calendar()
    day = _aware(start).astimezone(zone).date()
    for _ in range(_HORIZON_DAYS):
        if n == 0:
            return _day_end(day, zone)
        day += timedelta(days=1)
        if cal.is_working_day(day):
            n -= 1
    raise ValueError("no working day within ten years")


def _windows_from(start: datetime, zone: tzinfo, cal: Calendar):
    """Working windows as aware ``(from, to)`` intervals, from the one ``start`` falls in (cut at
    ``start``) onwards."""
    day = start.astimezone(zone).date() - timedelta(days=1)  # a window of the previous day may run past midnight
    for _ in range(_HORIZON_DAYS):
        for a, b in cal.windows(day):
            lo, hi = _local(day, a, zone), _local(day, b, zone)
            if hi <= start:
                continue
            yield max(lo, start), hi
        day += timedelta(days=1)


def add_working_time(start: datetime, seconds: float, tz=None, *, calendar: Calendar | None = None) -> datetime:
    """The instant (UTC) at which ``seconds`` of working time have passed since ``start`` — working
    time being the calendar's windows (:meth:`Calendar.windows`) in ``tz``. Begun outside working
    hours, the count starts with the next window; a count that ends exactly at a window's end ends
    there. ``seconds`` 0 gives ``start``."""
    if seconds < 0:
        raise ValueError("seconds must not be negative")
    zone, cal = _zone(tz), calendar or default_calendar()
    start = _aware(start)
    if seconds == 0:
        return _utc(start)
    left = float(seconds)
    for lo, hi in _windows_from(start, zone, cal):
        span = (hi - lo).total_seconds()
        if left <= span:
            return _utc(lo + timedelta(seconds=left))
        left -= span
    raise ValueError("no working time within ten years")


def working_seconds_between(a: datetime, b: datetime, tz=None, *, calendar: Calendar | None = None) -> float:
    """Working time (seconds) from ``a`` to ``b`` (0 when ``b`` is not after ``a``)."""
    zone, cal = _zone(tz), calendar or default_calendar()
    a, b = _aware(a, "a"), _aware(b, "b")
    total = 0.0
    if b <= a:
        return total
    for lo, hi in _windows_from(a, zone, cal):
        if lo >= b:
            break
        total += (min(hi, b) - lo).total_seconds()
    return total


# --- due and state ------------------------------------------------------------------------------------

def _merged(pauses: Iterable[Pause], after: datetime) -> list[tuple[datetime, datetime | None]]:
    """Pauses clipped to start at ``after``, sorted and merged; an open one (end None) last."""
    items = []
    for p0, p1 in pauses:
        p0 = max(_aware(p0, "pause start"), after)
        if p1 is not None:
            p1 = _aware(p1, "pause end")
            if p1 <= p0:
                continue
        items.append((p0, p1))
    items.sort(key=lambda p: p[0])
    out: list[list] = []
    for p0, p1 in items:
        if out and (out[-1][1] is None or p0 <= out[-1][1]):
            if out[-1][1] is not None:
                out[-1][1] = None if p1 is None else max(out[-1][1], p1)
            continue
        out.append([p0, p1])
    return [(p0, p1) for p0, p1 in out]


def _walk(start: datetime, amount: float, pauses, advance: Callable[[datetime, float], datetime],
          measure: Callable[[datetime, datetime], float]) -> datetime | None:
    """Consume ``amount`` from ``start`` in the clock's measure, skipping ``pauses``."""
    t, left = start, amount
    for p0, p1 in pauses:
        if p1 is not None and p1 <= t:
            continue
        before = measure(t, p0) if p0 > t else 0.0
        if before >= left:
            break  # runs out before this pause
        left -= before
        if p1 is None:
            return None  # paused with time left: the deadline is not known yet
        t = max(t, p1)
    return advance(t, left)


def due(clock: Clock, started_at: datetime, pauses: Iterable[Pause] = (), tz=None, *,
        calendar: Calendar | None = None, extended: bool = False) -> datetime | None:
    """When the cycle of ``clock`` started at ``started_at`` (aware) runs out, in UTC, with the time
    in ``pauses`` (``(start, end)`` aware; ``end`` None: still paused) not counted (see the module's
    docstring for how each calendar kind counts a pause). ``extended``: the clock's ``extension`` is
    added (59-ФЗ ст. 12 ч. 2). None when an open pause began before the clock ran out."""
    zone, cal = _zone(tz), calendar or default_calendar()
    start = _aware(started_at, "started_at")
    merged = _merged(pauses, start)
    length = clock.duration + (clock.extension if extended and clock.extension else timedelta(0))
    if clock.calendar == "24x7":
        return _opt_utc(_walk(start, length.total_seconds(), merged,
                              lambda t, s: t + timedelta(seconds=s), lambda a, b: (b - a).total_seconds()))
    if clock.calendar == "working_hours":
        return _opt_utc(_walk(start, length.total_seconds(), merged,
                              lambda t, s: add_working_time(t, s, zone, calendar=cal),
                              lambda a, b: working_seconds_between(a, b, zone, calendar=cal)))
    working = clock.calendar == "working_days"
    day, n, walked = start.astimezone(zone).date(), length.days, 0
    while n > 0:
        walked += 1
        if walked > _HORIZON_DAYS:
            raise ValueError("no deadline within ten years")
        day += timedelta(days=1)
        lo = datetime.combine(day, time.min, zone)
        hi = datetime.combine(day + timedelta(days=1), time.min, zone)
        if any(p0 <= lo and p1 is None for p0, p1 in merged):
            return None  # paused for good before the last day came
        if working and not cal.is_working_day(day):
            continue
        if any(p0 <= lo and p1 is not None and p1 >= hi for p0, p1 in merged):
            continue  # paused for the whole day
        n -= 1
    while not working and not cal.is_working_day(day):
        day += timedelta(days=1)  # a term ending on a day off ends on the next working day (ГК РФ ст. 193)
    return _day_end(day, zone)


def elapsed_fraction(clock: Clock, started_at: datetime, pauses: Iterable[Pause] = (), now: datetime | None = None,
                     tz=None, *, calendar: Calendar | None = None, stopped_at: datetime | None = None,
                     extended: bool = False) -> float | None:
    """How much of the cycle's time is used at ``now`` (or at ``stopped_at``, if earlier): the time
    counted since ``started_at`` with ``pauses`` left out — working time for ``working_hours``, elapsed
    time otherwise — over the clock's duration (``24x7``, ``working_hours``) or over the same count up
    to the deadline (the day kinds, whose deadline is the end of a day). 1.0 at the deadline, more
    after it; None while the deadline of a day kind is unknown (paused with days left)."""
    zone, cal = _zone(tz), calendar or default_calendar()
    start = _aware(started_at, "started_at")
    end = _aware(now, "now") if now is not None else datetime.now(timezone.utc)
    if stopped_at is not None:
        end = min(end, _aware(stopped_at, "stopped_at"))
    merged = _merged(pauses, start)
    if clock.calendar == "working_hours":
        def measure(a, b):
            return working_seconds_between(a, b, zone, calendar=cal)
    else:
        def measure(a, b):
            return max((b - a).total_seconds(), 0.0)

    def counted(until: datetime) -> float:
        if until <= start:
            return 0.0
        total = measure(start, until)
        for p0, p1 in merged:
            if p0 >= until:
                break
            total -= measure(p0, until if p1 is None else min(p1, until))
        return max(total, 0.0)

    if clock.calendar in ("24x7", "working_hours"):
        length = clock.duration + (clock.extension if extended and clock.extension else timedelta(0))
        return counted(end) / length.total_seconds()
    due_at = due(clock, start, merged, zone, calendar=cal, extended=extended)
    if due_at is None:
        return None
    whole = counted(due_at)
    return counted(end) / whole if whole > 0 else 1.0


def warning_level(fraction: float | None) -> int | None:
    """The highest of :data:`WARNING_LEVELS` (per cent) that ``fraction`` of a clock has reached, or None."""
    if fraction is None:
        return None
    reached = [level for level in WARNING_LEVELS if fraction * 100 >= level - 1e-9]
    return reached[-1] if reached else None


def _opt_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else _utc(moment)


def state(clock: Clock, due_at: datetime | None, now: datetime, stopped_at: datetime | None = None, *,
          paused: bool = False) -> str:
    """``running``, ``met``, ``overdue`` or ``paused`` (:data:`STATES`) of a cycle that runs out at
    ``due_at`` (None: unknown while paused), judged at ``now``. Stopped at ``stopped_at``: ``met`` when
    by the deadline, else ``overdue`` (a breach stays one). Not stopped: ``overdue`` once ``now`` is
    past ``due_at``; else ``paused`` while ``paused`` (or the deadline is unknown), else ``running``.
    ``clock`` is the cycle's clock (the verdict does not depend on its kind)."""
    _aware(now, "now")
    if stopped_at is not None:
        return "met" if due_at is None or _aware(stopped_at, "stopped_at") <= due_at else "overdue"
    if due_at is not None and now > due_at:
        return "overdue"
    if paused or due_at is None:
        return "paused"
    return "running"


# --- cycles over events ----------------------------------------------------------------------------

@dataclass
class Cycle:
    """One run of a clock: ``started_at``, ``stopped_at`` (None: still running), ``pauses``,
    ``extended``: an :data:`EXTENDED` event came while it ran (its clock's ``extension`` applies)."""

    started_at: datetime
    stopped_at: datetime | None = None
    pauses: list[Pause] = field(default_factory=list)
    extended: bool = False

    @property
    def paused(self) -> bool:
        """Paused now (its last pause is still open)."""
        return bool(self.pauses) and self.pauses[-1][1] is None


#: The event of an approved extension (59-ФЗ ст. 12 ч. 2: the answer's 30 days once more, with a
#: reason): the running cycle of every clock that has an ``extension`` is judged with it; no other
#: clock notices it (except a ``restarts`` clock, for which every event is an update).
EXTENDED = "extended"


def cycles(clock: Clock, events: Iterable[tuple[datetime, str]]) -> list[Cycle]:
    """The cycles of ``clock`` over ``events``, ``(at, name)`` in time order (an appeal: ``received``
    at its creation, then the status entered at each transition, ``reopened`` when it is re-opened …).
    A cycle starts at an event of ``starts_on`` when none runs; an event of ``stops_on`` stops it; an
    event of ``pauses_in`` pauses it until an event that is not. A ``restarts`` clock: every event
    after the first meets the running cycle and starts the next (unless it is a stop); events of the
    cycle's own instant do not (one transition may be two events: ``reopened`` and ``in_progress``).
    An :data:`EXTENDED` event marks the running cycle ``extended``."""
    out: list[Cycle] = []
    current: Cycle | None = None
    for at, name in sorted(events, key=lambda e: e[0]):
        _aware(at, "event time")
        if name == EXTENDED and current is not None and clock.extension is not None:
            current.extended = True
            continue
        if current is not None:
            if clock.restarts and at == current.started_at and name not in clock.stops_on:
                continue  # events of one instant (re-opened and in progress) are one transition
            if current.paused and name not in clock.pauses_in:
                current.pauses[-1] = (current.pauses[-1][0], at)
            if name in clock.stops_on or clock.restarts:
                current.stopped_at = at
                current = None
                if name in clock.stops_on:
                    continue
            elif name in clock.pauses_in and not current.paused:
                current.pauses.append((at, None))
                continue
            else:
                continue
        if name in clock.starts_on or (clock.restarts and out):
            current = Cycle(at)
            out.append(current)
            if name in clock.pauses_in:
                current.pauses.append((at, None))
    return out


@dataclass(frozen=True)
class ClockStatus:
    """Where one clock stands: ``code``, ``due`` (UTC, None while paused with time left), ``state``
    (:data:`STATES`), ``started_at`` of its latest cycle, ``cycle`` (1 for the first) and ``fraction``
    of its time used (:func:`elapsed_fraction`)."""

    code: str
    due: datetime | None
    state: str
    started_at: datetime
    cycle: int
    fraction: float | None = None

    @property
    def warning(self) -> int | None:
        """The warning level (50, 80, 100 per cent, :func:`warning_level`) the cycle has reached;
        None for a clock met, or below 50 %."""
        return None if self.state == "met" else warning_level(self.fraction)

    def as_dict(self) -> dict:
        """``{code, due, state, warning}``, ``due`` ISO 8601 in UTC or None."""
        return {"code": self.code, "due": self.due.isoformat() if self.due else None, "state": self.state,
                "warning": self.warning}


def status(clock: Clock, events: Iterable[tuple[datetime, str]], now: datetime, tz=None, *,
           calendar: Calendar | None = None, extended: bool = False) -> ClockStatus | None:
    """The latest cycle of ``clock`` over ``events`` judged at ``now`` (None: it never started). A
    re-opened object's new cycle is judged on its own deadline; earlier cycles keep theirs
    (:func:`cycles`, :func:`due`, :func:`state`). ``extended`` (or an :data:`EXTENDED` event in the
    cycle) adds the clock's ``extension``."""
    runs = cycles(clock, events)
    if not runs:
        return None
    last = runs[-1]
    extended = extended or last.extended
    due_at = due(clock, last.started_at, last.pauses, tz, calendar=calendar, extended=extended)
    fraction = elapsed_fraction(clock, last.started_at, last.pauses, now, tz, calendar=calendar,
                                stopped_at=last.stopped_at, extended=extended)
    return ClockStatus(clock.code, due_at, state(clock, due_at, now, last.stopped_at, paused=last.paused),
                       _utc(last.started_at), len(runs), fraction)
