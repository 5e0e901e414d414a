"""The calendar the application computes deadlines on (crm.clocks.services.calendar): the holidays
package, CRM_WORKING_HOURS and the administrators' overrides from the ``calendar_overrides`` table,
set and removed by administrators only, each change in the access log. Against the run's database."""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

MSK = ZoneInfo("Europe/Moscow")


def end_of(y, m, d) -> datetime:
    return datetime(y, m, d, 23, 59, 59, tzinfo=MSK).astimezone(timezone.utc)


def test_overrides_reach_the_calendar_and_the_deadlines(ctx, make_user):
    from crm.clocks import services
    from crm.clocks.deadlines import add_working_days
    from crm.db import db
    from crm.security.models import AccessLogEntry

    admin = make_user("admin")
    start = datetime(2026, 3, 2, 10, tzinfo=MSK)  # Monday; 3.03 a working Tuesday in the package
    assert add_working_days(start, 1, calendar=services.calendar()) == end_of(2026, 3, 3)
    services.set_override(admin, date(2026, 3, 3), "holiday", note="региональный праздник")
    services.set_override(admin, date(2026, 3, 5), "shortened", hours=5)
    cal = services.calendar()
    assert not cal.is_working_day(date(2026, 3, 3))
    assert add_working_days(start, 1, calendar=cal) == end_of(2026, 3, 4)
    assert cal.windows(date(2026, 3, 5)) == ((time(8), time(13)),)
    # replacing the day's override, then removing it
    services.set_override(admin, date(2026, 3, 3), "shortened")
    assert services.calendar().windows(date(2026, 3, 3)) == ((time(8), time(16)),)
    services.remove_override(admin, date(2026, 3, 3))
    assert [(o.day, o.kind, o.hours) for o in services.overrides()] == [(date(2026, 3, 5), "shortened", 5.0)]
    assert services.calendar().windows(date(2026, 3, 3)) == ((time(8), time(17)),)
    log = db.session.execute(sa.select(AccessLogEntry.detail).where(AccessLogEntry.action == "calendar.override")
                             .order_by(AccessLogEntry.seq)).scalars().all()
    assert log == ["2026-03-03: holiday", "2026-03-05: shortened 5 h", "2026-03-03: shortened",
                   "2026-03-03: removed"]


def test_only_administrators_change_the_calendar(ctx, make_user):
    from crm.clocks import services
    from crm.errors import InvalidInput, NotFound
    from crm.security.permissions import PermissionDenied

    admin = make_user("admin")
    for role in ("operator", "supervisor", "dpo"):
        with pytest.raises(PermissionDenied):
            services.set_override(make_user(role), date(2026, 3, 3), "holiday")
    with pytest.raises(InvalidInput) as err:
        services.set_override(admin, date(2026, 3, 3), "vacation")
    assert err.value.code == "invalid_kind"
    with pytest.raises(InvalidInput):
        services.set_override(admin, date(2026, 3, 3), "holiday", hours=4)
    with pytest.raises(NotFound):
        services.remove_override(admin, date(2026, 3, 3))
    assert services.overrides() == []


def test_working_hours_come_from_the_configuration(ctx, monkeypatch):
    from crm.clocks import services

    monkeypatch.setitem(ctx.config, "CRM_WORKING_HOURS", {"mon-fri": "09:00-13:00,14:00-18:00"})
    assert services.calendar().windows(date(2026, 3, 2)) == ((time(9), time(13)), (time(14), time(18)))
    assert services.calendar().windows(date(2026, 4, 30)) == ((time(9), time(13)), (time(14), time(17)))
