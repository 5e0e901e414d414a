"""Self-service grants do not pile up (issue 13, point 4: no enumeration through self-service).
Every code request for a number nobody has leaves a decoy grant (``citizen_id`` NULL); they were
never deleted, and ``request_code`` counted the last hour's decoys through an index that could only
find *all* NULL rows, so a request for an unknown number grew slower as decoys accumulated (a timing
oracle an attacker could amplify). The retention run now deletes grants a day past their expiry, and
the hourly count reads only the last hour of an index on (citizen_id, kind, created_at)."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from crm.consent import retention, selfservice
from crm.consent.jobs import retention_job
from crm.consent.models import DataSubjectRequest, SelfServiceGrant
from crm.db import db, new_id, utcnow
from tests.factories import CitizenFactory

UNKNOWN = "+7 916 555-01-02"


def _grant(citizen_id: str | None, *, age: timedelta, kind: str = "code") -> str:
    created = utcnow() - age
    grant = SelfServiceGrant(id=new_id(), kind=kind, citizen_id=citizen_id, scope=[], created_at=created,
                             expires_at=created + timedelta(minutes=10), code_hash="0" * 64)
    db.session.add(grant)
    db.session.commit()
    return grant.id


def _ids() -> set[str]:
    return set(db.session.execute(sa.select(SelfServiceGrant.id)).scalars())


def test_the_retention_job_purges_expired_grants(ctx, sms_inbox):
    citizen = CitizenFactory(phone="+7 916 204-73-58")
    old_decoys = [_grant(None, age=timedelta(days=d)) for d in (2, 3, 40)]
    old_real = _grant(citizen.id, age=timedelta(days=5))
    old_link = _grant(citizen.id, age=timedelta(days=5), kind="link")
    evidence = _grant(citizen.id, age=timedelta(days=5))  # an access request's identity check
    db.session.add(DataSubjectRequest(citizen_id=citizen.id, type="access", channel="web", status="open",
                                      received_at=utcnow(), due_at=utcnow() + timedelta(days=10),
                                      verification_grant_id=evidence))
    db.session.commit()
    fresh_decoy = _grant(None, age=timedelta(minutes=30))
    expired_today = _grant(None, age=timedelta(hours=2))  # expired, but within the kept day
    live = selfservice.request_code(UNKNOWN)

    dry = retention.run(dry_run=True)
    assert dry.report["purged_grants"] == 5 and len(_ids()) == 9
    db.session.rollback()  # end this session's read: the job writes through its own (SQLite: one writer)
    result = retention_job()
    db.session.expire_all()
    left = _ids()
    assert not left & {*old_decoys, old_real, old_link}
    assert left == {evidence, fresh_decoy, expired_today, live}
    assert db.session.get(type(dry), result["run"]).report["purged_grants"] == 5


def test_the_hourly_count_reads_only_the_last_hour_of_an_index(ctx, sms_inbox):
    """The count statement request_code runs, explained by PostgreSQL with sequential scans
    disabled (the test table is tiny, so the planner would otherwise read it whole): an index
    bounds the scan by created_at, not only by citizen_id followed by a filter. For a number nobody
    has the statement compares citizen_id with a random id (no row), the same statement a known
    number runs (issue 13 re-audit; before, ``citizen_id IS NULL`` read the hour's decoys)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("EXPLAIN output is PostgreSQL's")
    for d in range(1, 30):
        _grant(None, age=timedelta(days=d))
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "count(" in statement.lower() and "selfservice_grants" in statement:
            seen.append((statement, parameters))

    sa.event.listen(db.engine, "before_cursor_execute", capture)
    try:
        selfservice.request_code(UNKNOWN)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", capture)
    assert len(seen) == 1
    statement, parameters = seen[0]
    with db.engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN {statement}", parameters))
        conn.exec_driver_sql("RESET enable_seqscan")
    cond = [line for line in plan.splitlines() if "Index Cond" in line]
    assert "ix_selfservice_grants_recent_codes" in plan, plan
    assert cond and "created_at" in cond[0] and "citizen_id = " in cond[0], plan
