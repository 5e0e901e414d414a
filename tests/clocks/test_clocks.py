"""crm.clocks without an app: the Russian calendar from the ``holidays`` package (transfers checked
against the package, not typed in here), pre-holiday days (ТК РФ ст. 95), overrides, working hours,
and the deadline arithmetic — working days, working time, pauses, states, re-opening — across the New
Year and May holidays and a transferred Saturday. Instants are UTC in and out; days are Moscow's."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import holidays
import pytest

from crm.clocks import deadlines as dl
from crm.clocks.deadlines import (DEFAULT_CLOCKS, Clock, add_working_days, add_working_time, cycles, due, state,
                                  status, working_seconds_between)
from crm.clocks.workcalendar import DEFAULT_HOURS, Calendar, Override, WorkingHours

MSK = ZoneInfo("Europe/Moscow")
UTC = timezone.utc
PACKAGE = holidays.country_holidays("RU", years=range(2024, 2028))


def msk(y, m, d, hh=0, mm=0, ss=0) -> datetime:
    """A Moscow wall-clock time as the UTC instant the functions take."""
    return datetime(y, m, d, hh, mm, ss, tzinfo=MSK).astimezone(UTC)


def end_of(y, m, d) -> datetime:
    return msk(y, m, d, 23, 59, 59)


def days(y0, m0, d0, y1, m1, d1):
    d, last = date(y0, m0, d0), date(y1, m1, d1)
    while d <= last:
        yield d
        d += timedelta(days=1)


CLOCK = {c.code: c for c in DEFAULT_CLOCKS}


# --- the calendar comes from the package --------------------------------------------------------------

def test_every_day_of_2024_to_2027_is_the_packages():
    cal = Calendar()
    for d in days(2024, 1, 1, 2027, 12, 31):
        assert cal.is_working_day(d) == PACKAGE.is_working_day(d), d


def test_transferred_saturdays_are_working_days_as_the_package_says():
    """The decrees' transferred working Saturdays, read from the package: 2025 has one (1 November),
    2026 none; each is worked with the hours of the weekday whose place it took."""
    cal = Calendar()
    saturdays = sorted(d for d in PACKAGE.weekend_workdays if d.year in (2025, 2026))
    assert saturdays and all(d.year == 2025 for d in saturdays)
    for d in saturdays:
        assert d.weekday() >= 5 and cal.is_working_day(d)
        replaced = cal.replaced_weekday(d)
        assert replaced is not None and replaced.weekday() < 5 and not cal.is_working_day(replaced)
        assert replaced in PACKAGE  # the day off it became
    assert date(2025, 11, 1) in saturdays  # the one this file's examples lean on


def test_pre_holiday_days_match_the_production_calendars():
    """ТК РФ ст. 95: a working day right before a holiday of ст. 112 is an hour shorter, and so is a
    transferred Saturday that took the place of such a day. The government's production calendars:
    2024 — 22.02, 7.03, 8.05, 11.06, 2.11 (1979 h = 248 × 8 − 5); 2025 — 7.03, 30.04, 11.06, 1.11
    (1972 h); 2026 — 30.04, 8.05, 11.06, 3.11."""
    cal = Calendar()

    def short(year):
        return [d for d in days(year, 1, 1, year, 12, 31) if cal.is_working_day(d) and cal.is_shortened(d)]

    assert short(2024) == [date(2024, 2, 22), date(2024, 3, 7), date(2024, 5, 8), date(2024, 6, 11), date(2024, 11, 2)]
    assert short(2025) == [date(2025, 3, 7), date(2025, 4, 30), date(2025, 6, 11), date(2025, 11, 1)]
    assert short(2026) == [date(2026, 4, 30), date(2026, 5, 8), date(2026, 6, 11), date(2026, 11, 3)]
    # 7 May 2025 precedes a transferred day off (8 May), not a holiday: a full day
    assert not cal.is_shortened(date(2025, 5, 7))
    assert sum(cal.is_working_day(d) for d in days(2025, 1, 1, 2025, 12, 31)) == 247


def test_hours_default_and_shortened():
    cal = Calendar()
    assert cal.windows(date(2026, 3, 2)) == ((time(8), time(17)),)          # Monday
    assert cal.windows(date(2026, 3, 6)) == ((time(8), time(15, 45)),)      # Friday
    assert cal.windows(date(2026, 3, 7)) == ()                              # Saturday
    assert cal.windows(date(2026, 4, 30)) == ((time(8), time(16)),)         # Thursday before 1 May
    assert cal.windows(date(2026, 5, 8)) == ((time(8), time(14, 45)),)      # Friday before 9 May
    assert cal.windows(date(2025, 11, 1)) == ((time(8), time(16)),)         # worked as Monday 3.11, shortened
    two = WorkingHours.parse({"mon-fri": "08:00-12:00, 12:45-17:00"})
    assert Calendar(hours=two).windows(date(2026, 4, 30)) == ((time(8), time(12)), (time(12, 45), time(16)))


@pytest.mark.parametrize("spec", [{"mon-xyz": "08:00-17:00"}, {"fri-mon": "08:00-17:00"}, {"mon": "17:00-08:00"},
                                  {"mon": "8-17"}, {"mon": "08:00-12:00,11:00-17:00"}])
def test_bad_hours_are_refused(spec):
    with pytest.raises(ValueError):
        WorkingHours.parse(spec)


def test_overrides_win_over_the_package():
    cal = Calendar([Override(date(2026, 3, 2), "holiday"), Override(date(2026, 3, 7), "working"),
                    Override(date(2026, 3, 10), "shortened"), Override(date(2026, 3, 11), "shortened", hours=4),
                    Override(date(2026, 4, 30), "working")])
    assert not cal.is_working_day(date(2026, 3, 2)) and cal.windows(date(2026, 3, 2)) == ()
    assert cal.is_working_day(date(2026, 3, 7)) and cal.windows(date(2026, 3, 7)) == ((time(8), time(17)),)
    assert cal.windows(date(2026, 3, 10)) == ((time(8), time(16)),)
    assert cal.windows(date(2026, 3, 11)) == ((time(8), time(12)),)
    assert not cal.is_shortened(date(2026, 4, 30))  # "working": a full day after all
    with pytest.raises(ValueError):
        Override(date(2026, 3, 2), "vacation")


# --- working days ---------------------------------------------------------------------------------------

def test_working_days_across_the_new_year_holidays():
    # 30.12.2025 (Tue): 31.12 a transferred day off, 1–8.01 holidays, 9.01 transferred, 10–11.01 weekend
    for d in (date(2025, 12, 31), date(2026, 1, 9)):
        assert d in PACKAGE and not PACKAGE.is_working_day(d)
    assert add_working_days(msk(2025, 12, 30, 15), 1) == end_of(2026, 1, 12)
    assert add_working_days(msk(2025, 12, 30, 15), 10) == end_of(2026, 1, 23)
    # late in the evening of 30.12 Moscow time is already 30.12 21:30 UTC: the day is Moscow's
    assert add_working_days(msk(2025, 12, 30, 23, 59), 1) == end_of(2026, 1, 12)
    assert add_working_days(msk(2025, 12, 31, 0, 30), 1) == end_of(2026, 1, 12)


def test_working_days_across_the_may_holidays():
    # 2025: 1–4 May and 8–11 May off (2 May and 8 May transferred days off)
    assert add_working_days(msk(2025, 4, 30, 10), 1) == end_of(2025, 5, 5)
    assert add_working_days(msk(2025, 4, 30, 10), 4) == end_of(2025, 5, 12)
    # 2026: 1–3 May and 9–11 May off
    assert add_working_days(msk(2026, 4, 30, 10), 10) == end_of(2026, 5, 18)


def test_working_days_through_a_transferred_saturday():
    # Friday 31.10.2025 → Saturday 1.11 is worked; 2.11 Sunday, 3.11 a day off, 4.11 a holiday
    assert add_working_days(msk(2025, 10, 31, 12), 1) == end_of(2025, 11, 1)
    assert add_working_days(msk(2025, 10, 31, 12), 2) == end_of(2025, 11, 5)


def test_in_and_out_are_utc_and_naive_is_refused():
    out = add_working_days(msk(2026, 3, 2, 9), 1)
    assert out.tzinfo == UTC
    assert add_working_time(msk(2026, 3, 2, 9), 3600).tzinfo == UTC
    with pytest.raises(ValueError):
        add_working_days(datetime(2026, 3, 2, 9), 1)
    with pytest.raises(ValueError):
        add_working_time(datetime(2026, 3, 2, 9), 60)
    with pytest.raises(ValueError):
        add_working_days(msk(2026, 3, 2, 9), -1)


def test_the_zone_is_a_parameter():
    # 20:30 UTC on Thursday 5.03.2026 is still Thursday in Moscow (23:30) but Friday 01:30 in Yekaterinburg
    start = datetime(2026, 3, 5, 20, 30, tzinfo=UTC)
    assert add_working_days(start, 1) == end_of(2026, 3, 6)  # Moscow (CRM_TIMEZONE's default): Friday
    ekb = ZoneInfo("Asia/Yekaterinburg")  # Friday → 7–8 weekend, 9.03 holiday → Tuesday
    assert add_working_days(start, 1, "Asia/Yekaterinburg") == datetime(2026, 3, 10, 23, 59, 59, tzinfo=ekb)
    assert add_working_days(start, 1, ekb).tzinfo == UTC


# --- working time ----------------------------------------------------------------------------------------

def test_working_time_within_and_across_days():
    assert add_working_time(msk(2026, 3, 2, 9), 3600) == msk(2026, 3, 2, 10)
    assert add_working_time(msk(2026, 3, 2, 16), 2 * 3600) == msk(2026, 3, 3, 9)      # 1 h Monday, 1 h Tuesday
    assert add_working_time(msk(2026, 3, 2, 16), 3600) == msk(2026, 3, 2, 17)         # ends at the window's end
    assert add_working_time(msk(2026, 3, 2, 6), 60) == msk(2026, 3, 2, 8, 1)          # before opening
    assert add_working_time(msk(2026, 3, 6, 15), 3600) == msk(2026, 3, 10, 8, 15)     # Fri 15:45, 9.03 holiday
    assert add_working_time(msk(2026, 3, 7, 12), 0) == msk(2026, 3, 7, 12)


def test_working_time_through_a_transferred_shortened_saturday():
    # Friday 31.10.2025 15:00: 45 min to 15:45; Saturday 1.11 works 08:00–16:00 (Monday's hours, shortened)
    assert add_working_time(msk(2025, 10, 31, 15), 2 * 3600) == msk(2025, 11, 1, 9, 15)
    assert add_working_time(msk(2025, 10, 31, 15), (45 + 8 * 60) * 60) == msk(2025, 11, 1, 16)
    assert add_working_time(msk(2025, 10, 31, 15), (45 + 8 * 60 + 1) * 60) == msk(2025, 11, 5, 8, 1)


def test_working_time_across_the_new_year():
    # Tuesday 30.12.2025 16:00 (a full day: 31.12 is a transferred day off, not a holiday) → 12.01.2026
    assert add_working_time(msk(2025, 12, 30, 16), 2 * 3600) == msk(2026, 1, 12, 9)
    assert working_seconds_between(msk(2025, 12, 30, 16), msk(2026, 1, 12, 9)) == 2 * 3600


# --- due, pauses, states ---------------------------------------------------------------------------------

def test_due_24x7_with_pauses():
    clock = CLOCK["blockage_cleared"]  # 2 h, around the clock
    start = msk(2026, 1, 1, 3)
    assert due(clock, start) == msk(2026, 1, 1, 5)
    pauses = [(msk(2026, 1, 1, 3, 30), msk(2026, 1, 1, 4)), (msk(2026, 1, 1, 4, 15), msk(2026, 1, 1, 4, 30))]
    assert due(clock, start, pauses) == msk(2026, 1, 1, 5, 45)
    # a pause after the clock ran out changes nothing; one before the start counts from the start
    assert due(clock, start, [(msk(2026, 1, 1, 6), msk(2026, 1, 1, 9))]) == msk(2026, 1, 1, 5)
    assert due(clock, start, [(msk(2026, 1, 1, 2), msk(2026, 1, 1, 3, 30))]) == msk(2026, 1, 1, 5, 30)
    # still paused with time left: unknown
    assert due(clock, start, [(msk(2026, 1, 1, 4), None)]) is None
    assert due(clock, start, [(msk(2026, 1, 1, 5, 30), None)]) == msk(2026, 1, 1, 5)


def test_due_in_working_hours_with_a_pause():
    clock = Clock("callback", "перезвонить", timedelta(hours=4), calendar="working_hours")
    start = msk(2026, 3, 2, 15)  # Monday: 2 h left today, 2 h on Tuesday
    assert due(clock, start) == msk(2026, 3, 3, 10)
    # paused Monday 16:00 → Tuesday 09:00: only 1 h of Monday counts, 3 h from Tuesday 09:00
    assert due(clock, start, [(msk(2026, 3, 2, 16), msk(2026, 3, 3, 9))]) == msk(2026, 3, 3, 12)


def test_due_in_working_days_skips_whole_paused_days_only():
    clock = CLOCK["written_answer"]  # 10 working days
    start = msk(2026, 3, 2, 11)      # Monday
    assert due(clock, start) == end_of(2026, 3, 17)  # 9.03 is a holiday (8 March on a Sunday)
    # paused Tuesday 10:00 → Thursday 12:00: Wednesday 4.03 paused all day, the others not
    assert due(clock, start, [(msk(2026, 3, 3, 10), msk(2026, 3, 5, 12))]) == end_of(2026, 3, 18)
    assert due(clock, start, [(msk(2026, 3, 3, 10), msk(2026, 3, 3, 18))]) == end_of(2026, 3, 17)
    assert due(clock, start, [(msk(2026, 3, 3, 10), None)]) is None


def test_due_in_calendar_days_moves_off_a_day_off():
    clock = CLOCK["answer"]  # 30 days, 59-ФЗ
    assert due(clock, msk(2026, 4, 8, 10)) == end_of(2026, 5, 8)     # a Friday: stays
    assert due(clock, msk(2026, 4, 9, 10)) == end_of(2026, 5, 12)    # 9.05 Saturday → 12.05 (11.05 off)
    assert due(clock, msk(2026, 4, 9, 10), extended=True) == end_of(2026, 6, 8)   # +30 days, ст. 12 ч. 2
    assert due(CLOCK["forward_by_competence"], msk(2025, 12, 29, 10)) == end_of(2026, 1, 12)


def test_states():
    clock, d = CLOCK["handover"], msk(2026, 3, 2, 10)
    assert state(clock, d, msk(2026, 3, 2, 9, 59)) == "running"
    assert state(clock, d, msk(2026, 3, 2, 10, 1)) == "overdue"
    assert state(clock, d, msk(2026, 3, 2, 11), stopped_at=msk(2026, 3, 2, 9, 30)) == "met"
    assert state(clock, d, msk(2026, 3, 2, 11), stopped_at=msk(2026, 3, 2, 10, 30)) == "overdue"
    assert state(clock, d, msk(2026, 3, 2, 9, 59), paused=True) == "paused"
    assert state(clock, d, msk(2026, 3, 2, 10, 1), paused=True) == "overdue"
    assert state(clock, None, msk(2026, 3, 2, 12)) == "paused"


def test_clock_definitions_are_data():
    assert {"handover", "status_update", "emergency_localisation", "blockage_cleared", "written_answer",
            "registration", "answer", "forward_by_competence"} <= set(CLOCK)
    assert CLOCK["emergency_localisation"].duration == timedelta(minutes=30)
    assert CLOCK["blockage_cleared"].duration == timedelta(hours=2)
    assert CLOCK["handover"].duration == timedelta(hours=1)
    assert CLOCK["status_update"].duration == timedelta(hours=24)
    assert (CLOCK["written_answer"].duration, CLOCK["written_answer"].calendar) == (timedelta(days=10), "working_days")
    assert CLOCK["registration"].duration == timedelta(days=3)
    assert (CLOCK["answer"].duration, CLOCK["answer"].extension) == (timedelta(days=30), timedelta(days=30))
    assert CLOCK["forward_by_competence"].duration == timedelta(days=7)
    assert all(c.basis for c in DEFAULT_CLOCKS)
    codes = {c.code for c in dl.clocks_for(category="emergency", topic="sewerage", channel="phone", regime="housing")}
    assert codes == {"handover", "status_update", "emergency_localisation", "blockage_cleared"}
    codes = {c.code for c in dl.clocks_for(category="routine", topic="heating", channel="letter", regime="authority")}
    assert codes == {"handover", "status_update", "registration", "answer", "forward_by_competence"}
    with pytest.raises(ValueError):
        Clock("x", "x", timedelta(hours=36), calendar="working_days")


# --- cycles and re-opening ---------------------------------------------------------------------------------

def test_reopening_starts_a_new_cycle_judged_on_its_own_deadline():
    clock = CLOCK["written_answer"]
    events = [(msk(2026, 3, 2, 11), "received"), (msk(2026, 3, 3, 9), "escalated"),
              (msk(2026, 3, 20, 12), "resolved"),        # after the deadline of 17.03: a breach
              (msk(2026, 4, 1, 10), "reopened"), (msk(2026, 4, 1, 10), "in_progress")]
    runs = cycles(clock, events)
    assert [(r.started_at, r.stopped_at) for r in runs] == [(msk(2026, 3, 2, 11), msk(2026, 3, 20, 12)),
                                                           (msk(2026, 4, 1, 10), None)]
    first = due(clock, runs[0].started_at)
    assert first == end_of(2026, 3, 17) and state(clock, first, msk(2026, 4, 2), runs[0].stopped_at) == "overdue"
    now = msk(2026, 4, 2, 12)
    st = status(clock, events, now)
    assert (st.cycle, st.state, st.due) == (2, "running", end_of(2026, 4, 15))
    assert st.as_dict() == {"code": "written_answer", "due": end_of(2026, 4, 15).isoformat(), "state": "running",
                            "warning": None}
    # resolved in time this round: met, whatever the first round was
    assert status(clock, events + [(msk(2026, 4, 10, 9), "resolved")], now).state == "met"


def test_pausing_statuses_pause_the_cycle():
    clock = Clock("fix", "устранить", timedelta(hours=8), pauses_in=("awaiting_citizen",))
    events = [(msk(2026, 3, 2, 9), "received"), (msk(2026, 3, 2, 10), "awaiting_citizen"),
              (msk(2026, 3, 2, 14), "in_progress")]
    runs = cycles(clock, events)
    assert runs[0].pauses == [(msk(2026, 3, 2, 10), msk(2026, 3, 2, 14))]
    assert status(clock, events, msk(2026, 3, 2, 15)).due == msk(2026, 3, 2, 21)
    waiting = status(clock, events[:2], msk(2026, 3, 2, 20))
    assert (waiting.state, waiting.due) == ("paused", None)


def test_status_update_restarts_at_every_transition():
    clock = CLOCK["status_update"]
    events = [(msk(2026, 3, 2, 9), "received"), (msk(2026, 3, 2, 10), "escalated"),
              (msk(2026, 3, 4, 12), "in_progress"), (msk(2026, 3, 5, 9), "closed")]
    runs = cycles(clock, events)
    assert [r.started_at for r in runs] == [msk(2026, 3, 2, 9), msk(2026, 3, 2, 10), msk(2026, 3, 4, 12)]
    verdicts = [state(clock, due(clock, r.started_at), msk(2026, 3, 6), r.stopped_at) for r in runs]
    assert verdicts == ["met", "overdue", "met"]  # escalated 2.03 10:00, next update only 4.03 12:00
    assert status(clock, events, msk(2026, 3, 6)).state == "met"
    # a re-opening is two events of one instant: one new cycle, not two
    reopened = events + [(msk(2026, 3, 9, 10), "reopened"), (msk(2026, 3, 9, 10), "in_progress")]
    assert [r.started_at for r in cycles(clock, reopened)][-1] == msk(2026, 3, 9, 10)
    assert len(cycles(clock, reopened)) == 4
    assert status(clock, reopened, msk(2026, 3, 9, 12)).state == "running"


# --- how much of a clock is used: the 50/80/100 % warnings -----------------------------------------------

def test_elapsed_fraction_and_warning_levels():
    from crm.clocks.deadlines import elapsed_fraction, warning_level

    clock = CLOCK["blockage_cleared"]  # 2 h around the clock
    start = msk(2026, 1, 1, 3)
    assert elapsed_fraction(clock, start, now=msk(2026, 1, 1, 3, 59)) == pytest.approx(59 / 120)
    assert warning_level(elapsed_fraction(clock, start, now=msk(2026, 1, 1, 3, 59))) is None
    assert warning_level(elapsed_fraction(clock, start, now=msk(2026, 1, 1, 4))) == 50
    assert warning_level(elapsed_fraction(clock, start, now=msk(2026, 1, 1, 4, 36))) == 80
    assert warning_level(elapsed_fraction(clock, start, now=msk(2026, 1, 1, 5))) == 100
    # a pause does not count: 1 h paused of 2 h elapsed leaves 50 %
    paused = [(msk(2026, 1, 1, 3, 30), msk(2026, 1, 1, 4, 30))]
    assert elapsed_fraction(clock, start, paused, msk(2026, 1, 1, 5)) == pytest.approx(0.5)
    # stopped at 04:00: what was used then
    assert elapsed_fraction(clock, start, now=msk(2026, 1, 1, 9), stopped_at=msk(2026, 1, 1, 4)) == pytest.approx(0.5)
    # working hours: Friday 15:00 + 4 h runs to Monday; by Saturday noon only the 45 min of Friday count
    callback = Clock("callback", "перезвонить", timedelta(hours=4), calendar="working_hours")
    assert elapsed_fraction(callback, msk(2026, 3, 6, 15), now=msk(2026, 3, 7, 12)) == pytest.approx(45 / 240)
    # working days: 10 working days from Monday 2.03 end on 17.03; by 10.03 00:00 (9.03 a holiday) ...
    answer = CLOCK["written_answer"]
    start = msk(2026, 3, 2, 11)
    whole = (end_of(2026, 3, 17) - start).total_seconds()
    assert elapsed_fraction(answer, start, now=msk(2026, 3, 10)) == pytest.approx(
        (msk(2026, 3, 10) - start).total_seconds() / whole)
    assert elapsed_fraction(answer, start, [(msk(2026, 3, 3, 10), None)], msk(2026, 3, 10)) is None
    assert warning_level(1.7) == 100 and warning_level(None) is None


def test_status_carries_the_warning_reached():
    clock = CLOCK["handover"]
    events = [(msk(2026, 3, 2, 9), "received")]
    assert status(clock, events, msk(2026, 3, 2, 9, 40)).warning == 50
    assert status(clock, events, msk(2026, 3, 2, 9, 50)).as_dict()["warning"] == 80
    assert status(clock, events, msk(2026, 3, 2, 11)).warning == 100
    met = events + [(msk(2026, 3, 2, 9, 55), "escalated")]
    assert status(clock, met, msk(2026, 3, 2, 11)).warning is None  # met: nothing to warn about
