"""Access-log benchmark: appends per second (1 and 8 writer processes) and `verify` time.

    .venv/bin/python bench/audit.py [--verify-entries 1000000] [--appends 2000]

Runs on SQLite (a temp file) and, when DATABASE_URL is set, on PostgreSQL (a throwaway database).
Baseline in the same run: plain INSERTs into an unchained table of the same shape, so the cost of
the chain (head-row lock + SHA-256) is visible. Targets (issue 4): ≥ 2,000 appends/s with 8
writers on PostgreSQL; verify 1M entries in ≤ 30 s.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _app(url: str, instance: str):
    from crm import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": instance, "SECRET_KEY": "bench",
                       "REDIS_URL": "redis://127.0.0.1:1/0"})


def _writer(url, instance, n, per_tx, plain, barrier):
    from sqlalchemy import text

    from crm.db import db
    from crm.security import audit

    app = _app(url, instance)
    with app.app_context():
        barrier.wait()
        actor = audit.system_actor("bench")
        for i in range(0, n, per_tx):
            if plain:
                db.session.execute(text("INSERT INTO bench_plain (actor, action, detail) VALUES ('bench', 'x', :d)"),
                                   [{"d": f"{os.getpid()}-{i + j}"} for j in range(per_tx)])
            else:
                for j in range(per_tx):
                    audit.record("bench.append", detail=f"{os.getpid()}-{i + j}", actor=actor)
            db.session.commit()


def appends_per_s(url, instance, writers, total, plain, per_tx=1):
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(writers + 1)
    procs = [ctx.Process(target=_writer, args=(url, instance, total // writers, per_tx, plain, barrier))
             for _ in range(writers)]
    for p in procs:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    for p in procs:
        p.join()
    return total / (time.perf_counter() - t0)


def fill_chain(app, n):
    """Insert ``n`` valid chained entries fast (computed here, bulk-inserted)."""
    from datetime import datetime, timezone

    from crm.db import db
    from crm.security.audit import GENESIS, entry_hash
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


def run(label, url, instance, args):
    from flask_migrate import upgrade
    from sqlalchemy import text

    from crm.db import db
    from crm.security.audit import verify

    app = _app(url, instance)
    with app.app_context():
        upgrade()
        db.session.execute(text("CREATE TABLE bench_plain (id INTEGER PRIMARY KEY, actor VARCHAR(80), "
                                "action VARCHAR(40), detail TEXT)" if "sqlite" in url else
                                "CREATE TABLE bench_plain (id SERIAL PRIMARY KEY, actor VARCHAR(80), "
                                "action VARCHAR(40), detail TEXT)"))
        db.session.commit()
    print(f"\n== {label} ==")
    print(f"{'writers':>8} {'chained appends/s':>18} {'plain inserts/s (baseline)':>28}")
    for w in (1, 8):
        chained = appends_per_s(url, instance, w, args.appends, plain=False)
        plain = appends_per_s(url, instance, w, args.appends, plain=True)
        print(f"{w:>8} {chained:>18,.0f} {plain:>28,.0f}")
    t0 = time.perf_counter()
    fill_chain(app, args.verify_entries)
    fill_s = time.perf_counter() - t0
    with app.app_context():
        t0 = time.perf_counter()
        count, bad, msg = verify()
        dt = time.perf_counter() - t0
    print(f"verify: {count:,} entries in {dt:.1f} s ({count / dt:,.0f}/s), result: {msg} (filled in {fill_s:.0f} s)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--appends", type=int, default=2000)
    ap.add_argument("--verify-entries", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        from crm.security.keyring import init_keys

        init_keys(Path(tmp) / "keys")
        run("SQLite", f"sqlite:///{tmp}/bench.sqlite3", tmp, args)
        url = os.environ.get("DATABASE_URL")
        if url:
            import sqlalchemy as sa

            base = sa.make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
            name = f"crm_bench_{secrets.token_hex(3)}"
            admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(sa.text(f'CREATE DATABASE "{name}"'))
            try:
                run("PostgreSQL", base.set(database=name).render_as_string(hide_password=False), tmp, args)
            finally:
                with admin.connect() as c:
                    c.execute(sa.text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname='{name}'"))
                    c.execute(sa.text(f'DROP DATABASE "{name}"'))


if __name__ == "__main__":
    main()
