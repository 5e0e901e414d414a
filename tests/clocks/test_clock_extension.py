"""An approved extension is an event of the clock's cycle (crm.clocks.deadlines.EXTENDED): a clock
with a legal extension (59-ФЗ ст. 12 ч. 2: the answer's 30 days, once more) runs with it; a clock
without one (ПП РФ № 416's) does not notice it."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from crm.clocks import deadlines
from crm.clocks.deadlines import EXTENDED, status


def _clock(code: str) -> deadlines.Clock:
    return next(c for c in deadlines.DEFAULT_CLOCKS if c.code == code)


def test_an_extended_event_extends_only_clocks_that_have_an_extension():
    start = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
    answer, localisation = _clock("answer"), _clock("emergency_localisation")
    events = [(start, "received"), (start, "registered")]
    now = start + timedelta(days=1)
    plain = status(answer, events, now)
    extended = status(answer, events + [(start + timedelta(days=20), EXTENDED)], now)
    assert extended.due == status(answer, events, now, extended=True).due
    # 30 more days (a term ending on a day off moves to the next working day: 1 May 2026 → 4 May)
    assert plain.due < extended.due and 30 <= (extended.due - plain.due).days <= 33
    assert extended.fraction < plain.fraction
    # the emergency's 30 minutes are the law's, with no extension: unchanged
    e_events = [(start, "received")]
    assert status(localisation, e_events + [(start + timedelta(minutes=10), EXTENDED)], now).due == \
        status(localisation, e_events, now).due
    # an extension of an earlier cycle does not carry over to a re-opened appeal's new one
    runs = deadlines.cycles(answer, events + [(start + timedelta(days=2), EXTENDED), (start + timedelta(days=3), "closed"),
                                              (start + timedelta(days=4), "reopened")])
    assert [r.extended for r in runs] == [True, False]
