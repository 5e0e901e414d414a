"""Access-log benchmark: chained appends per second (1 and 8 writer processes, 1 and 5 entries per
transaction) and `verify` time, each beside a baseline measured in the same run.

    .venv/bin/python bench/audit.py [--verify-entries 1000000] [--appends 16000]
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test .venv/bin/python bench/audit.py

Runs on SQLite (a temp file) and, when DATABASE_URL is set, on PostgreSQL (a throwaway database).
Columns, all in entries per second:

* ``early release`` — the chain as configured by default (``CRM_AUDIT_EARLY_LOCK_RELEASE``): the
  head-row lock is released at commit before the WAL flush, and commit() returns after a
  durability barrier (crm/security/audit/chain.py). PostgreSQL only.
* ``lock thru fsync`` — the chain with the lock held until the commit is on disk (the setting
  off; how appends worked before: one fsync per transaction, strictly one after another).
* ``plain (baseline)`` — the same number of rows INSERTed into an unchained table of the same
  shape, committed the same way: what the database and the disk allow without a chain. With 1
  writer and 1 entry per transaction it is the disk's durable commits per second for one client;
  with 8 writers, PostgreSQL's group commit shares fsyncs between them.

Verify: a chain of ``--verify-entries`` entries is bulk-filled, then walked by
``crm.security.audit.verify`` (the same code as ``crm audit verify``); the baseline is the same
queries without hashing or checks, i.e. the time spent in the database and its driver.

Targets (issue "an access log the DPO can trust"): ≥ 2,000 appends/s with 8 writers on PostgreSQL;
verify 1M entries in ≤ 30 s. Never a test: machines differ.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scratch import postgres_databases  # noqa: E402 (bench/ is the script's own folder on sys.path)


def _app(url: str, instance: str, **extra):
    from crm import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": instance, "SECRET_KEY": "bench", "CRM_CONTROLLER_NAME": "bench", "CRM_CONTROLLER_ADDRESS": "bench",
                       "REDIS_URL": "redis://127.0.0.1:1/0", **extra})


def _writer(url, instance, n, per_tx, mode, barrier, done):
    from sqlalchemy import text

    from crm.db import db
    from crm.security import audit

    app = _app(url, instance, CRM_AUDIT_EARLY_LOCK_RELEASE=(mode == "early"))
    with app.app_context():
        actor = audit.system_actor("bench")
        db.session.execute(text("SELECT 1"))  # connect before the clock starts
        db.session.commit()
        barrier.wait()
        for i in range(0, n, per_tx):
            if mode == "plain":
                db.session.execute(text("INSERT INTO bench_plain (actor, action, detail) VALUES ('bench', 'x', :d)"),
                                   [{"d": f"{os.getpid()}-{i + j}"} for j in range(per_tx)])
            else:
                for j in range(per_tx):
                    audit.record("bench.append", detail=f"{os.getpid()}-{i + j}", actor=actor)
            db.session.commit()
        done.put(time.monotonic())  # before interpreter teardown, which is not the database's time


def appends_per_s(url, instance, writers, total, mode, per_tx=1) -> float:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(writers + 1)
    done = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, instance, total // writers, per_tx, mode, barrier, done))
             for _ in range(writers)]
    for p in procs:
        p.start()
    barrier.wait()
    t0 = time.monotonic()  # CLOCK_MONOTONIC: one clock for all processes on Linux
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"writer failed ({mode}, {writers} writers)")
    t1 = max(done.get() for _ in procs)  # the last writer's last commit
    return (total // writers) * writers / (t1 - t0)


def fill_chain(app, n):
    """Insert ``n`` valid chained entries fast (computed here, bulk-inserted)."""
    from datetime import datetime, timezone

    from crm.db import db
    from crm.security.audit import entry_hash
    from crm.security.models import AccessLogEntry, AuditHead

    with app.app_context():
        head = db.session.get(AuditHead, 1)
        seq, prev = head.seq, head.hash
        now = datetime.now(timezone.utc)
        batch = []
        for _ in range(n):
            seq += 1
            e = dict(seq=seq, at=now, actor_id=None, actor="job:bench", actor_role="system", action="bench.fill",
                     citizen_id=None, fields="", purpose=None, appeal_id=None, call_id=None, ip=None,
                     user_agent=None, outcome="ok", detail=None, prev_hash=prev)
            prev = entry_hash(e)
            e["hash"] = prev
            batch.append(e)
            if len(batch) == 20000:
                db.session.execute(db.insert(AccessLogEntry), batch)
                batch = []
        if batch:
            db.session.execute(db.insert(AccessLogEntry), batch)
        head.seq, head.hash = seq, prev
        db.session.commit()


def _plain_read(app) -> float:
    """Seconds to fetch every entry the way verify does (same queries), without hashing or checks."""
    from crm.db import db
    from crm.security import audit
    from crm.security.models import AccessLogEntry

    with app.app_context():
        t0 = time.perf_counter()
        conn = db.session.connection(bind_arguments={"mapper": AccessLogEntry})
        rows = (audit._iter_pg_canonical(conn, 1, 2 ** 62, 50000) if conn.dialect.name == "postgresql"
                else audit.iter_rows(db.session, raw=True))
        for _ in rows:
            pass
        db.session.commit()
        return time.perf_counter() - t0


def run(label, url, instance, args):
    from flask_migrate import upgrade
    from sqlalchemy import text

    from crm.db import db
    from crm.security.audit import verify

    app = _app(url, instance)
    pg = not url.startswith("sqlite")
    with app.app_context():
        upgrade()
        db.session.execute(text("CREATE TABLE bench_plain (id SERIAL PRIMARY KEY, actor VARCHAR(80), "
                                "action VARCHAR(40), detail TEXT)" if pg else
                                "CREATE TABLE bench_plain (id INTEGER PRIMARY KEY, actor VARCHAR(80), "
                                "action VARCHAR(40), detail TEXT)"))
        db.session.commit()
        if pg:
            sync = db.session.execute(text("SHOW synchronous_commit")).scalar()
            print(f"\n== {label} (synchronous_commit={sync}, {os.cpu_count()} CPUs) ==")
        else:
            print(f"\n== {label} (journal WAL, {os.cpu_count()} CPUs) ==")
    print(f"{'writers':>8} {'entries/tx':>10} {'early release':>14} {'lock thru fsync':>16} {'plain (baseline)':>17}")
    for writers, per_tx in ((1, 1), (8, 1), (8, 5)):
        early = appends_per_s(url, instance, writers, args.appends, "early", per_tx) if pg else None
        held = appends_per_s(url, instance, writers, args.appends, "held", per_tx)
        plain = appends_per_s(url, instance, writers, args.appends, "plain", per_tx)
        early_s = f"{early:>14,.0f}" if early is not None else f"{'—':>14}"
        print(f"{writers:>8} {per_tx:>10} {early_s} {held:>16,.0f} {plain:>17,.0f}", flush=True)
    t0 = time.perf_counter()
    fill_chain(app, args.verify_entries)
    fill_s = time.perf_counter() - t0
    read_s = _plain_read(app)
    with app.app_context():
        t0 = time.perf_counter()
        count, bad, msg = verify()
        dt = time.perf_counter() - t0
    print(f"verify: {count:,} entries in {dt:.1f} s ({count / dt:,.0f}/s), result: {msg}; "
          f"baseline plain read of the same rows {read_s:.1f} s (filled in {fill_s:.0f} s)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--appends", type=int, default=16000)
    ap.add_argument("--verify-entries", type=int, default=1_000_000)
    ap.add_argument("--skip-sqlite", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        from crm.security.keyring import init_keys

        init_keys(Path(tmp) / "keys")
        if not args.skip_sqlite:
            run("SQLite", f"sqlite:///{tmp}/bench.sqlite3", tmp, args)
        with postgres_databases("crm_bench") as urls:
            if urls:
                run("PostgreSQL", urls[0], tmp, args)


if __name__ == "__main__":
    main()
