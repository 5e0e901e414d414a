"""Several processes append to the access log at once; the chain stays linear and verifiable —
with the chain lock held through the commit's fsync and with early lock release (PostgreSQL),
with transactions of one or several entries, and with transactions that roll back."""
from __future__ import annotations

import multiprocessing as mp
import time

import pytest
import sqlalchemy as sa

from crm.db import db
from crm.security import audit
from crm.security.audit import chain  # where the chaining code looks the barriers up
from crm.security.models import AccessLogEntry
from tests.factories import CitizenFactory


def _writer(config: dict, n: int, per_tx: int, tag: str) -> None:
    from crm import create_app

    app = create_app({k: v for k, v in config.items()})
    with app.app_context():
        for i in range(n):
            for j in range(per_tx):
                audit.record("test.append", detail=f"{tag}-{i}-{j}", actor=audit.system_actor(tag))
            if i % 7 == 3:
                db.session.rollback()  # an aborted action: its entries must leave no gap
            else:
                db.session.commit()


@pytest.mark.parametrize("early_release, per_tx", [(True, 1), (True, 3), (False, 1)],
                         ids=["early-release", "early-release-3-per-tx", "lock-through-fsync"])
def test_concurrent_writers_leave_a_valid_chain(ctx, app_config, early_release, per_tx):
    config = {**app_config, "SQLALCHEMY_DATABASE_URI": ctx.config["SQLALCHEMY_DATABASE_URI"],
              "CRM_AUDIT_EARLY_LOCK_RELEASE": early_release}
    spawn = mp.get_context("spawn")
    procs = [spawn.Process(target=_writer, args=(config, 40, per_tx, f"w{i}")) for i in range(4)]
    db.session.commit()  # end this session's read: on SQLite it would hold the write lock (BEGIN IMMEDIATE)
    deadline = time.monotonic() + 300  # a few seconds when idle; a loaded machine starts Python slowly
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
            assert p.exitcode == 0
    finally:
        for p in procs:  # a writer left running would write into the tests after this one
            if p.is_alive():
                p.kill()
                p.join(10)
    db.session.commit()
    count, bad, message = audit.verify()
    assert bad is None, message
    committed = sum(1 for i in range(40) if i % 7 != 3)
    assert db.session.execute(db.select(db.func.count()).select_from(AccessLogEntry)
                              .where(AccessLogEntry.action == "test.append")).scalar() == 4 * committed * per_tx
    seqs = db.session.execute(db.select(AccessLogEntry.seq).order_by(AccessLogEntry.seq)).scalars().all()
    assert seqs == list(range(1, len(seqs) + 1))
    # the entries of one transaction are consecutive
    rows = db.session.execute(db.select(AccessLogEntry.detail).where(AccessLogEntry.action == "test.append")
                              .order_by(AccessLogEntry.seq)).scalars().all()
    for k in range(0, len(rows), per_tx):
        assert len({r.rsplit("-", 1)[0] for r in rows[k:k + per_tx]}) == 1


def test_no_entry_no_action(ctx):
    """If the entry cannot be written, the action does not happen: with the chain head gone the
    commit fails and the citizen is not stored."""
    from crm.citizens.models import Citizen
    from tests.conftest import tamper

    tamper("DELETE FROM audit_head")
    try:
        with pytest.raises(RuntimeError, match="chain head"):
            CitizenFactory(full_name="Белов Антон Ильич", phone="+7 912 000-99-88")
        db.session.rollback()
        assert db.session.execute(db.select(db.func.count()).select_from(Citizen)).scalar() == 0
    finally:
        db.session.rollback()
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :h)"), {"h": audit.GENESIS})


def test_a_failed_log_only_transaction_leaves_the_connection_as_it_was(ctx):
    """A transaction that only logs sends its own BEGIN inside the chaining message (PostgreSQL).
    When the chaining fails there, commit() raises, nothing is written, and the pooled connection
    is back in its normal state: not in autocommit, no transaction left open."""
    from tests.conftest import tamper

    tamper("DELETE FROM audit_head")
    try:
        for _ in range(2):  # the same pooled connection, twice
            audit.record("test.append", actor=audit.system_actor("t"))
            with pytest.raises(RuntimeError, match="chain head"):
                db.session.commit()
            db.session.rollback()
            conn = db.session.connection()
            if conn.dialect.name == "postgresql":
                assert conn.connection.dbapi_connection.autocommit is False
            assert conn.execute(sa.text("SELECT count(*) FROM access_log")).scalar() == 0
            db.session.rollback()
    finally:
        db.session.rollback()
        with db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :h)"), {"h": audit.GENESIS})
    audit.record("test.append", actor=audit.system_actor("t"))
    db.session.commit()
    assert audit.verify() == (1, None, "ok")


def test_early_release_commit_is_durable_before_commit_returns(ctx, monkeypatch):
    """With early lock release the chaining transaction commits asynchronously, and commit()
    returns only after the durability barrier (PostgreSQL)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("early lock release is a PostgreSQL feature")
    # crm_audit_append (what before_commit runs) switches synchronous_commit off for its transaction only
    entry = dict(at=audit.utcnow(), actor_id=None, actor="job:t", actor_role="system", action="test.append",
                 citizen_id=None, fields="", purpose=None, appeal_id=None, call_id=None, ip=None,
                 user_agent=None, outcome="ok", detail=None)
    db.session.execute(sa.text("SELECT crm_audit_append(:p, true)"), {"p": audit.pg_entry(entry)})
    assert db.session.execute(sa.text("SHOW synchronous_commit")).scalar() == "off"
    db.session.rollback()
    assert db.session.execute(sa.text("SHOW synchronous_commit")).scalar() != "off"
    db.session.rollback()
    calls = []
    real, real_queued = audit.durability_barrier, audit.queue_barrier
    monkeypatch.setattr(chain, "durability_barrier", lambda engine=None: (calls.append(engine), real(engine)))
    monkeypatch.setattr(chain, "queue_barrier", lambda raw: (calls.append(raw), real_queued(raw)))
    audit.record("test.append", actor=audit.system_actor("t"))
    db.session.commit()
    assert len(calls) == 1
    monkeypatch.setitem(ctx.config, "CRM_AUDIT_EARLY_LOCK_RELEASE", False)
    audit.record("test.append", actor=audit.system_actor("t"))
    db.session.commit()
    assert len(calls) == 1
    db.session.commit()  # no entries: no barrier
    assert len(calls) == 1 and audit.verify()[1] is None


def test_rolled_back_action_leaves_no_entry_and_savepoints_keep_them(ctx):
    audit.record("test.refused", actor=audit.system_actor("t"))
    db.session.rollback()  # e.g. a service recorded, then refused before any SQL
    audit.record("test.kept", actor=audit.system_actor("t"))
    db.session.execute(sa.text("SELECT 1"))
    with pytest.raises(ValueError):
        with db.session.begin_nested():
            raise ValueError
    db.session.commit()
    actions = db.session.execute(db.select(AccessLogEntry.action)).scalars().all()
    assert actions == ["test.kept"]


def test_a_long_transaction_and_its_times_round_trip(ctx):
    """A list page can log hundreds of entries in one transaction (several INSERT chunks); the
    times written by the raw statements read back exactly through the ORM."""
    for i in range(1203):
        audit.record("test.bulk", detail=str(i), actor=audit.system_actor("t"))
    recorded = [e["at"] for e in db.session.info[audit._PENDING]]
    db.session.commit()
    assert audit.verify() == (1203, None, "ok")
    db.session.expire_all()
    rows = db.session.execute(db.select(AccessLogEntry).order_by(AccessLogEntry.seq)).scalars().all()
    assert [r.at for r in rows] == recorded
    assert [r.detail for r in rows] == [str(i) for i in range(1203)]


def test_a_write_after_the_chaining_commit_fails_loudly(ctx):
    """PostgreSQL commits the transaction in the chaining message: a before_commit hook that ran
    after ours and added rows would write them outside that transaction. It is refused."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the chaining message commits only on PostgreSQL")
    from datetime import datetime, timezone

    from sqlalchemy import event

    from crm.dpo.models import AccessAlert

    def late_hook(session):
        now = datetime.now(timezone.utc)
        session.add(AccessAlert(rule="test", key="late-hook", actor="t", window_start=now, window_end=now))

    session = db.session()
    event.listen(session, "before_commit", late_hook)
    try:
        audit.record("test.append", actor=audit.system_actor("t"))
        with pytest.raises(RuntimeError, match="after its access-log entries were committed"):
            session.commit()
        db.session.rollback()
    finally:
        event.remove(session, "before_commit", late_hook)
    assert db.session.execute(db.select(db.func.count()).select_from(AccessAlert)).scalar() == 0


def test_server_filled_columns_are_the_values_hashed(ctx):
    """PostgreSQL fills each row from the canonical JSON it hashed (crm_audit_append): every value —
    quotes, backslashes, control characters including the U+001E separator, Cyrillic, emoji,
    NULLs — comes back exactly as recorded, in transactions of 1 to 501 entries (two chunks), and
    the chain verifies. On SQLite the same test checks the Python chaining."""
    import random

    from tests.security.test_audit_canonical import random_entry

    rng = random.Random(11)
    sent = []
    for size in (1, 2, 7, 501):
        for _ in range(size):
            e = random_entry(rng)
            cols = AccessLogEntry.__table__.c
            # PostgreSQL text has no NUL; "%s" in the alphabet can overrun a column's length
            e = {k: (v.replace("\x00", "0")[:getattr(cols[k].type, "length", None)] if isinstance(v, str) else v)
                 for k, v in e.items()}
            actor = audit.Actor(e["actor_id"], e["actor"], e["actor_role"])
            with ctx.test_request_context("/", environ_base={"REMOTE_ADDR": e["ip"] or "",
                                                             "HTTP_USER_AGENT": e["user_agent"] or ""}):
                audit.record(e["action"], citizen_id=e["citizen_id"], fields=[e["fields"]] if e["fields"] else [],
                             purpose=e["purpose"], appeal_id=e["appeal_id"], call_id=e["call_id"],
                             outcome=e["outcome"], detail=e["detail"], actor=actor)
                from flask import request  # what record() took from the request

                e["ip"], e["user_agent"] = request.remote_addr or None, request.user_agent.string or None
            sent.append(e)
        db.session.commit()
    rows = db.session.execute(sa.select(AccessLogEntry).order_by(AccessLogEntry.seq)).scalars().all()
    assert len(rows) == len(sent)
    for e, row in zip(sent, rows):
        for k in ("actor_id", "actor", "actor_role", "action", "citizen_id", "fields", "purpose", "appeal_id",
                  "call_id", "ip", "user_agent", "outcome", "detail"):
            assert getattr(row, k) == e[k], (k, row.seq)
    assert [r.seq for r in rows] == list(range(rows[0].seq, rows[0].seq + len(sent)))
    assert audit.verify() == (len(sent), None, "ok")
