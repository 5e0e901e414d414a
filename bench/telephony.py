"""How many PBX events a second the telephony webhook sustains, on PostgreSQL behind gunicorn with two
workers, and whether a burst of simultaneous ``newCall``s loses any (issue 16: target ≥ 500 events/s
with p99 ≤ 50 ms; a burst of 200 loses none).

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python bench/telephony.py [--calls 1000] [--concurrency 16] [--burst 200] [--workers 2] \\
        [--drainers 1] [--profile 600] [--trace]

* A throwaway PostgreSQL database (and its key store database) is created, migrated and dropped at
  the end, like tests/conftest.py does; Redis is ``REDIS_URL`` under a prefix of this run's own
  (``CRM_QUEUE_PREFIX``; its keys are deleted at the end). The instance folder is a temporary one.
* gunicorn runs ``wsgi:app`` with ``gunicorn.conf.py`` and ``--workers 2`` (sync workers, the
  production settings; the access log goes to /dev/null so the terminal is not the bottleneck).
* The webhook queues newCall/answer/hangup (crm.telephony.inbox); ``--drainers`` processes of
  ``crm worker --queues telephony`` build them into call records, as in production, at
  ``--drainer-nice`` (10: the README's advice when they share cores with the web workers). The webhook's
  figures are the requests'; the records' are timed apart: from the first event sent until every
  call of the run is ``ended`` in the database (the backlog drained), with the workers' CPU per event.
* The client is ``--concurrency`` threads (``http.client``, a new connection per request, as the
  sync workers close each one); each thread plays whole calls — ``newCall``, ``answer``, ``hangup``,
  each signed (``X-CRM-Signature``) and stamped with the moment it is sent — and times every request.
* Baseline, same process, same client: ``GET /healthz`` (no database), the Flask app's request cycle.
* Open loop: ``--rate`` events a second (500) for ``--seconds`` (6), sent on schedule whatever the
  answers' speed, latency counted from when each was due: the p99 of the target is read here (the
  closed loop's latency is its own queueing: 16 clients at saturation wait for each other).
* The burst: ``--burst`` threads wait at a barrier and post one ``newCall`` each at once; once the
  workers have drained, every one of those calls must exist in the database (counted by SQL).
* ``--profile N``: N events through the Flask test client in this process under cProfile, the
  heaviest functions printed (where the webhook's time goes).

Prints a table; asserts nothing; not part of the test suite.
"""
from __future__ import annotations

import argparse
import cProfile
import hashlib
import hmac
import http.client
import io
import json
import os
import pstats
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

SECRET = "bench-" + secrets.token_hex(16)
PATH = "/api/v1/telephony/events"


def make_database(url: str) -> tuple[str, callable]:
    """A throwaway database on the server of ``url`` (as tests/conftest.py): its URL and a drop function."""
    name = f"crm_bench_{secrets.token_hex(4)}"
    base = sa.make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(sa.text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


def sign(raw: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()


def event(kind: str, call_id: str, n: int, at: datetime | None = None, **extra) -> bytes:
    """One signed-to-be event body: fictional numbers (+7 997 000-xx-xx, see crm.telephony.simulate),
    ``at`` = now unless given."""
    body = {"event_id": f"{call_id}-{kind}-{uuid.uuid4().hex[:8]}", "type": kind, "callId": call_id,
            "from": f"+7997000{n % 10000:04d}", "to": "+74950000000", "direction": "in", "queue": "hotline",
            "at": (at or datetime.now(timezone.utc)).isoformat(), **extra}
    return json.dumps(body).encode()


class Client:
    """Timed requests against ``host:port``; one new connection per request."""

    def __init__(self, port: int):
        self.port = port

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, float]:
        headers = {}
        if body is not None:
            headers = {"Content-Type": "application/json", "X-CRM-Signature": sign(body)}
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except OSError:
            status = 0
        finally:
            conn.close()
        return status, (time.perf_counter() - t0) * 1000


def cpu_s(pids) -> float:
    """User + system CPU seconds used so far by the processes ``pids`` (/proc; gone ones count 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / tick


def worker_pids(master: int) -> list[int]:
    """gunicorn's worker processes (the master's children)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            out.append(int(stat.parent.name))
    return out


def backend_pids(db_url: str) -> list[int]:
    """PostgreSQL server processes serving the bench database (the workers' pooled connections)."""
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        pids = list(conn.execute(sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                         "AND pid <> pg_backend_pid()")).scalars())
    engine.dispose()
    return pids


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))] if ordered else float("nan")


def figures(results: list[tuple[int, float]], wall: float) -> dict:
    """A phase's figures from its ``(status, ms)`` results and wall time (seconds)."""
    ms = [m for _, m in results]
    ok = sum(1 for status, _ in results if 200 <= status < 300)
    return {"requests": len(results), "ok": ok, "errors": len(results) - ok, "per_s": len(results) / wall,
            "p50": statistics.median(ms), "p99": pct(ms, 99), "max": max(ms), "wall_s": wall}


def run_phase(concurrency: int, jobs: list, do) -> dict:
    """Run ``do(job) -> [(status, ms), …]`` for every job on ``concurrency`` threads; the figures."""
    results: list[tuple[int, float]] = []
    lock = threading.Lock()

    def work(job):
        got = do(job)
        with lock:
            results.extend(got)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(work, jobs))
    return figures(results, time.perf_counter() - t0)


def healthz(client: Client, n: int, concurrency: int) -> dict:
    return run_phase(concurrency, list(range(n)), lambda _: [client.request("GET", "/healthz")])


def calls(client: Client, run: str, n_calls: int, concurrency: int) -> dict:
    def one_call(i: int):
        call_id = f"{run}-c{i:06d}"
        return [client.request("POST", PATH, event("newCall", call_id, i)),
                client.request("POST", PATH, event("answer", call_id, i, user=f"bench_op{i % 5 + 1}")),
                client.request("POST", PATH, event("hangup", call_id, i, cause="normalClearing"))]
    return run_phase(concurrency, list(range(n_calls)), one_call)


def paced(client: Client, run: str, rate: float, seconds: float, threads: int = 64) -> dict:
    """Open loop: events sent at ``rate`` a second for ``seconds`` (call k's newCall, answer and hangup
    as events 3k, 3k+1, 3k+2), whatever the answers' speed, as a PBX sends them; each latency counts
    from the moment the event was due, so a stalled server is not hidden by a client that waited for
    it (no coordinated omission). ``per_s`` is what was achieved: below ``rate`` when the client could
    not keep up."""
    n = int(rate * seconds)
    results: list[tuple[int, float]] = []
    lock = threading.Lock()

    def send(i: int, due: float) -> None:
        call_id, kind = f"{run}-p{i // 3:06d}", ("newCall", "answer", "hangup")[i % 3]
        extra = {"user": f"bench_op{i % 5 + 1}"} if kind == "answer" else (
            {"cause": "normalClearing"} if kind == "hangup" else {})
        # stamped with when it was due: a call's three events keep their order, whichever thread sends first
        at = start + timedelta(seconds=i / rate)
        status, _ = client.request("POST", PATH, event(kind, call_id, i // 3, at=at, **extra))
        with lock:
            results.append((status, (time.perf_counter() - due) * 1000))

    t0, start = time.perf_counter(), datetime.now(timezone.utc)
    with ThreadPoolExecutor(threads) as pool:
        for i in range(n):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, i, due)
    return figures(results, time.perf_counter() - t0)


def burst(client: Client, run: str, n: int) -> dict:
    barrier = threading.Barrier(n)

    def one(i: int):
        body = event("newCall", f"{run}-burst{i:04d}", 5000 + i)
        barrier.wait()
        return [client.request("POST", PATH, body)]
    return run_phase(n, list(range(n)), one)


def profile(app, run: str, n_events: int) -> str:
    """``n_events`` events (whole calls) through the test client, then built by :func:`inbox.drain` in
    this process, under cProfile; the top of the profile (the running drainers may take some: then
    the accepting side dominates)."""
    from crm.telephony import inbox

    client = app.test_client()
    prof = cProfile.Profile()
    prof.enable()
    for i in range(n_events // 3):
        call_id = f"{run}-prof{i:05d}"
        for body in (event("newCall", call_id, i), event("answer", call_id, i, user="bench_op1"),
                     event("hangup", call_id, i, cause="normalClearing")):
            resp = client.post(PATH, data=body, headers={"Content-Type": "application/json",
                                                         "X-CRM-Signature": sign(body)})
            assert resp.status_code == 202, resp.get_data(as_text=True)
    with app.app_context():
        inbox.drain()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
    return out.getvalue()


def trace(app, run: str) -> str:
    """The SQL statements (first 110 characters) and commits of one call's three events, in-process."""
    from crm.db import db

    lines: list[str] = []
    client = app.test_client()
    with app.app_context():
        engines = {name or "main": engine for name, engine in db.engines.items()}
    listeners = []
    for name, engine in engines.items():
        def before(conn, cursor, statement, params, context, executemany, name=name):
            lines.append(f"    [{name}] " + " ".join(statement.split())[:100])

        def commit(conn, name=name):
            lines.append(f"    [{name}] COMMIT")

        def begin(conn, name=name):
            lines.append(f"    [{name}] BEGIN")

        def rollback(conn, name=name):
            lines.append(f"    [{name}] ROLLBACK")
        for kind, fn in (("before_cursor_execute", before), ("commit", commit), ("begin", begin),
                         ("rollback", rollback)):
            sa.event.listen(engine, kind, fn)
            listeners.append((engine, kind, fn))
    try:
        call_id = f"{run}-trace"
        for body in (event("newCall", call_id, 1), event("answer", call_id, 1, user="bench_op1"),
                     event("hangup", call_id, 1, cause="normalClearing")):
            lines.append(json.loads(body)["type"] + ":")
            client.post(PATH, data=body, headers={"Content-Type": "application/json", "X-CRM-Signature": sign(body)})
            with app.app_context():  # built here (before a drainer takes it: they may, then this shows less)
                from crm.telephony import inbox

                inbox.drain()
    finally:
        for engine, name, fn in listeners:
            sa.event.remove(engine, name, fn)
    return "\n".join(lines)


def wait_up(port: int, proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}")
        status, _ = Client(port).request("GET", "/healthz")
        if status == 200:
            return
        time.sleep(0.3)
    raise SystemExit("gunicorn did not answer /healthz")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=1000, help="calls of three events each")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--burst", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="gunicorn --threads (more than 1: the gthread worker)")
    ap.add_argument("--drainers", type=int, default=1, help="`crm worker --queues telephony` processes")
    ap.add_argument("--drainer-nice", type=int, default=10,
                    help="their niceness (README: on shared cores the webhook answers first, records follow)")
    ap.add_argument("--drain-timeout", type=float, default=600, help="seconds to wait for the records")
    ap.add_argument("--rate", type=float, default=500, help="open-loop phase: events a second offered …")
    ap.add_argument("--seconds", type=float, default=6, help="… for this long")
    ap.add_argument("--profile", type=int, default=0, help="also profile this many events in-process")
    ap.add_argument("--trace", action="store_true", help="also print the SQL of one call's events (in-process)")
    args = ap.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgresql://", "postgres://")):
        raise SystemExit("DATABASE_URL must name a PostgreSQL server (postgresql://…)")
    url = url.replace("postgres://", "postgresql://", 1)
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/2"
    run = f"bench{secrets.token_hex(3)}"
    prefix = f"{run}-"
    instance = Path(tempfile.mkdtemp(prefix="crm-bench-tel-"))
    db_url, drop = make_database(url)
    ks_url, drop_ks = make_database(url)
    proc = None
    drainers: list = []
    try:
        from crm.security.keyring import init_keys

        init_keys(instance / "keys")
        (instance / "config.py").write_text(
            f"SECRET_KEY = {secrets.token_hex(16)!r}\nSQLALCHEMY_DATABASE_URI = {db_url!r}\n"
            f"CRM_KEYSTORE_URL = {ks_url!r}\nREDIS_URL = {redis_url!r}\nCRM_QUEUE_PREFIX = {prefix!r}\n"
            f"CRM_TELEPHONY_SECRET = {SECRET!r}\nCRM_CONTROLLER_NAME = 'bench'\nCRM_CONTROLLER_ADDRESS = 'bench'\n"
            "RATELIMIT_ENABLED = False\n")
        env = {**os.environ, "CRM_INSTANCE_PATH": str(instance), "PYTHONPATH": str(ROOT)}
        for key in ("DATABASE_URL", "REDIS_URL", "CRM_TELEPHONY_SECRET"):
            env.pop(key, None)
        os.environ["CRM_INSTANCE_PATH"] = str(instance)
        for key in ("DATABASE_URL", "REDIS_URL"):
            os.environ.pop(key, None)
        from flask_migrate import upgrade

        from crm import create_app

        app = create_app()
        with app.app_context():
            upgrade()
            from crm.users import services as users

            for i in range(1, 6):  # the operators the answer events name (an unknown name is dropped, logged)
                users.create_user(f"bench_op{i}", "operator", secrets.token_urlsafe(16))
        port = free_port()
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        proc = subprocess.Popen([gunicorn, "-c", "gunicorn.conf.py", "--workers", str(args.workers), "--threads", str(args.threads),
                                 "--bind", f"127.0.0.1:{port}", "--access-logfile", "/dev/null", "wsgi:app"],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        wait_up(port, proc)
        crm_bin = str(Path(sys.executable).with_name("crm"))
        for _ in range(args.drainers):
            drainers.append(subprocess.Popen(["nice", "-n", str(args.drainer_nice), crm_bin, "worker", "--queues",
                                              "telephony"], cwd=ROOT, env=env,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                             start_new_session=True))
        client = Client(port)
        engine = sa.create_engine(db_url)

        def count(pattern: str, ended_only: bool = False) -> int:
            sql = "SELECT count(*) FROM telephony_calls WHERE pbx_call_id LIKE :p" + (
                " AND state = 'ended'" if ended_only else "")
            with engine.connect() as conn:
                return conn.execute(sa.text(sql), {"p": pattern}).scalar_one()

        def wait_for(pattern: str, want: int, ended_only: bool) -> tuple[int, float]:
            t0 = time.perf_counter()
            got = count(pattern, ended_only)
            while got < want and time.perf_counter() - t0 < args.drain_timeout:
                time.sleep(0.2)
                got = count(pattern, ended_only)
            return got, time.perf_counter() - t0

        calls(client, run + "warm", 30, 4)  # warm-up: connections, caches, the drainers' first job
        wait_for(f"{run}warm-c%", 30, True)
        n = args.calls * 3
        base = healthz(client, n, args.concurrency)
        app_pids, pg_pids = worker_pids(proc.pid), backend_pids(db_url)
        drain_pids = [d.pid for d in drainers]
        app_cpu0, pg_cpu0, drain_cpu0 = cpu_s(app_pids), cpu_s(pg_pids), cpu_s(drain_pids)
        t_load = time.perf_counter()
        load = calls(client, run, args.calls, args.concurrency)
        app_ms = (cpu_s(app_pids) - app_cpu0) * 1000 / n
        ended, waited = wait_for(f"{run}-c%", args.calls, True)
        built_s = time.perf_counter() - t_load
        pg_ms = (cpu_s(backend_pids(db_url)) - pg_cpu0) * 1000 / n  # the drainers' backends too
        drain_ms = (cpu_s(drain_pids) - drain_cpu0) * 1000 / n
        wait_for(f"{run}-c%", args.calls, True)
        steady = paced(client, run, args.rate, args.seconds)
        spike = burst(client, run, args.burst)
        stored, _ = wait_for(f"{run}-burst%", args.burst, False)
        paced_calls = int(args.rate * args.seconds) // 3
        paced_ended, _ = wait_for(f"{run}-p%", paced_calls, True)
        engine.dispose()
        print(f"\nbench/telephony.py — gunicorn {args.workers} workers × {args.threads} threads, PostgreSQL, client {args.concurrency} "
              f"threads (burst {args.burst})")
        print(f"{'phase':<38}{'requests':>9}{'errors':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
        for name, r in (("GET /healthz (baseline: Flask cycle)", base),
                        (f"events, closed loop ({args.concurrency} clients)", load),
                        (f"events offered at {args.rate:.0f}/s (open loop)", steady),
                        (f"burst: {args.burst} newCall at once", spike)):
            print(f"{name:<38}{r['requests']:>9}{r['errors']:>8}{r['per_s']:>9.0f}{r['p50']:>9.1f}{r['p99']:>9.1f}"
                  f"{r['max']:>9.1f}")
        cores = os.cpu_count() or 1
        print(f"CPU per event: web workers {app_ms:.2f} ms (accepting: at most ≈ {cores * 1000 / max(app_ms, 0.01):.0f} "
              f"events/s on {cores} idle cores); building the records: drainers {drain_ms:.2f} ms + PostgreSQL "
              f"{pg_ms:.2f} ms; load average now {os.getloadavg()[0]:.1f}")
        print(f"records: {ended} of {args.calls} calls ended in the database {built_s:.1f} s after the first event "
              f"({n / built_s:.0f} events/s built by {args.drainers} drainer(s) at nice {args.drainer_nice}; the backlog was drained "
              f"{waited:.1f} s after the last answer)")
        print(f"burst calls stored: {stored} of {args.burst} (lost: {args.burst - stored}); open-loop calls ended: "
              f"{paced_ended} of {paced_calls}")
        verdict = lambda ok: "met" if ok else "NOT met"  # noqa: E731
        print(f"targets: ≥ 500 events/s — {verdict(load['per_s'] >= 500)} (closed loop: {load['per_s']:.0f} at most; "
              f"open loop: {steady['per_s']:.0f} of {args.rate:.0f} offered); "
              f"p99 ≤ 50 ms at 500/s — {verdict(steady['p99'] <= 50 and args.rate >= 500 and steady['per_s'] >= 0.98 * args.rate)} "
              f"({steady['p99']:.1f}); "
              f"burst loses none — {verdict(stored == args.burst and spike['errors'] == 0)}")
        if args.trace:
            print("\nSQL of one call (in-process):\n" + trace(app, run))
        if args.profile:
            print(f"\nin-process profile of {args.profile} events (own time):")
            print(profile(app, run, args.profile))
    finally:
        for d in drainers:
            os.killpg(d.pid, signal.SIGTERM)
        for d in drainers:
            try:
                d.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(d.pid, signal.SIGKILL)
            err = d.stderr.read().decode(errors="replace") if d.stderr else ""
            if "Traceback" in err:
                print("drainer errors:\n" + err[-3000:], file=sys.stderr)
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            if "Traceback" in err:
                print("gunicorn errors:\n" + err[-3000:], file=sys.stderr)
        try:
            import redis

            conn = redis.Redis.from_url(redis_url)
            keys = list(conn.scan_iter(f"*{prefix}*"))
            if keys:
                conn.delete(*keys)
        except Exception as exc:  # the figures are printed already
            print(f"redis clean-up failed: {exc}", file=sys.stderr)
        drop()
        drop_ks()
        shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    main()
