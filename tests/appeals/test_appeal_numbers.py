"""Appeal numbers follow the hotline's local calendar year (``CRM_TIMEZONE``; issue 14 point 4), and
concurrent creations on PostgreSQL get distinct, consecutive numbers (the year's counter row lock)."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from crm.db import db
from tests.factories import AppealFactory, CitizenFactory


def test_numbers_follow_the_local_calendar_year(ctx, monkeypatch):
    from crm.appeals import services as appeals

    late = datetime(2026, 12, 31, 22, 0, tzinfo=timezone.utc)  # 1 January 2027, 01:00 in Moscow
    assert appeals._next_number(late) == "2027-000001"
    assert appeals._next_number(datetime(2026, 12, 31, 20, 59, tzinfo=timezone.utc)) == "2026-000001"
    assert appeals._next_number(late + timedelta(minutes=5)) == "2027-000002"
    monkeypatch.setitem(ctx.config, "CRM_TIMEZONE", "Asia/Vladivostok")  # UTC+10
    assert appeals._next_number(datetime(2026, 12, 31, 14, 30, tzinfo=timezone.utc)) == "2027-000003"
    db.session.rollback()


def test_an_appeal_received_on_new_years_night_is_numbered_in_the_new_year(ctx, make_user, monkeypatch):
    from crm.appeals import services as appeals

    op = make_user("operator")
    monkeypatch.setattr(appeals, "utcnow", lambda: datetime(2026, 12, 31, 22, 0, tzinfo=timezone.utc))
    appeal = AppealFactory(operator=op)
    assert appeal.number.startswith("2027-")


def test_concurrent_creations_get_distinct_consecutive_numbers(ctx, make_user):
    """Two (and then eight) appeals created at once, each in its own connection: the year's counter row is
    locked by the first UPDATE, so the second waits and takes the next number — no two alike, no gap."""
    from crm.appeals import services as appeals
    from crm.appeals.models import Appeal

    op = make_user("operator")
    op_id = op.id
    citizens = [CitizenFactory(full_name=f"Параллельный {i}", phone=f"8 916 700-40-{i:02d}") for i in range(8)]
    ids = [c.id for c in citizens]
    db.session.commit()
    app = ctx

    def run(n: int) -> list[str]:
        barrier, numbers, errors = threading.Barrier(n), [], []

        def create(cid: str):
            with app.app_context():
                try:
                    from crm.citizens import services as citizens

                    person = citizens.get(cid)
                    db.session.commit()  # hold no transaction at the barrier (on SQLite it holds the write lock)
                    barrier.wait()
                    numbers.append(appeals.create(person, category="routine", topic="lift", description="Лифт стоит",
                                                  channel="phone", operator_id=op_id).number)
                except Exception as exc:  # reported below
                    errors.append(exc)
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=create, args=(cid,)) for cid in ids[:n]]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        return numbers

    two = run(2)
    # eight writers at once: PostgreSQL queues them on the row lock; SQLite serialises whole transactions
    # (BEGIN IMMEDIATE) and would time some out waiting, which is SQLite's limit, not the counter's
    eight = run(8) if db.engine.dialect.name == "postgresql" else []
    got = sorted(int(n.split("-")[1]) for n in two + eight)
    assert got == list(range(1, len(two + eight) + 1)), got
    assert len({n.split("-")[0] for n in two + eight}) == 1
    db.session.expire_all()
    assert db.session.execute(sa.select(sa.func.count()).select_from(Appeal)).scalar_one() == len(two + eight)
