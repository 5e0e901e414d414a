"""Self-service code request: median time of ``POST /my`` for a registered and an unregistered phone,
side by side, as the app does it (the SMS is sent by a background job) and as a baseline measured in
the same run with the SMS sent inside the request (how it was before re-audit 13.1).

    .venv/bin/python bench/selfservice.py [--requests 200]
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python bench/selfservice.py

Runs on SQLite (a temp file) and, when DATABASE_URL is set, on PostgreSQL (a throwaway database);
Redis is ``REDIS_URL`` (a queue prefix of its own, removed afterwards) or an embedded server in a temp
folder. Each request asks a code for a phone asked for nowhere else (a registered citizen's or a number
nobody has), so the hourly limit never turns a known number into a decoy; known and unknown requests
alternate. The SMS gateway is the default outbox (no provider), so "sent in the request" shows the
least that sending costs. The last row times the citizen lookup alone (blind index, decrypting the
candidates, the access-log entry of the read): as ``POST /my`` makes it now (``even``: keys from the key
store and a decoy decrypted for a number nobody has, issue 13 re-audit) and as staff searches make it
(cached keys, nothing decrypted for an unknown number), the part that differed by ~1.5 ms. Figures in
milliseconds; never a test: machines differ.
"""
from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scratch import postgres_databases  # noqa: E402 (bench/ is the script's own folder on sys.path)


def _app(url: str, instance: str, redis_url: str | None, prefix: str):
    from crm import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url, "INSTANCE_PATH": instance, "SECRET_KEY": "bench",
                       "CRM_CONTROLLER_NAME": "bench", "CRM_CONTROLLER_ADDRESS": "bench", "TESTING": True,
                       "WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False, "REDIS_URL": redis_url,
                       "CRM_QUEUE_PREFIX": prefix, "CRM_REDIS_SOCKET": str(Path(instance) / "redis.sock")})


def _phone(i: int) -> str:
    return f"+7 916 {i // 10000 % 1000:03d}-{i // 100 % 100:02d}-{i % 100:02d}"


def run(label: str, url: str, instance: str, redis_url: str | None, n: int) -> None:
    from flask_migrate import upgrade

    from crm import jobs
    from crm.citizens import services as citizens
    from crm.consent import selfservice
    from crm.consent.services import DSR_PURPOSE, ensure_purposes
    from crm.db import db

    prefix = f"bench-{secrets.token_hex(3)}-"
    app = _app(url, instance, redis_url, prefix)
    with app.app_context():
        upgrade()
        ensure_purposes()
        for i in range(2 * n):  # known numbers: even indexes; odd ones are nobody's
            citizens.register(citizens.CitizenData(full_name=f"Замеров Пётр {i}", phone=_phone(2 * i)))
        db.session.commit()
        client = app.test_client()
        for i in range(5):  # warm-up: connections, key caches, templates
            client.post("/my", data={"phone": _phone(10_000_000 + i)})

        def timed(phone: str) -> float:
            t0 = time.perf_counter()
            resp = client.post("/my", data={"phone": phone})
            dt = (time.perf_counter() - t0) * 1000
            assert resp.status_code == 302, resp.status_code
            return dt

        def measure(offset: int) -> tuple[float, float]:
            known, unknown = [], []
            for i in range(n):
                known.append(timed(_phone(2 * (offset + i))))
                unknown.append(timed(_phone(2 * (offset + i) + 1)))
            return statistics.median(known), statistics.median(unknown)

        queued = measure(0)
        real_enqueue = selfservice.jobs.enqueue

        def send_now(func, *args, **kw):  # the baseline: the SMS inside the request, as before
            selfservice.deliver_code(*args)

        selfservice.jobs.enqueue = send_now
        try:
            inline = measure(n)
        finally:
            selfservice.jobs.enqueue = real_enqueue
        def lookups(even: bool) -> tuple[float, float]:
            """The citizen lookup alone: as POST /my makes it (``even``) and as staff searches do."""
            known, unknown = [], []
            for i in range(n):
                for phone, out in ((_phone(2 * i), known), (_phone(2 * i + 1), unknown)):
                    t0 = time.perf_counter()
                    citizens.find_by_phone(phone, purpose=DSR_PURPOSE, even=even)
                    db.session.commit()
                    out.append((time.perf_counter() - t0) * 1000)
            return statistics.median(known), statistics.median(unknown)

        lookup, lookup_even = lookups(False), lookups(True)
        for q in jobs.QUEUES:
            jobs.queue(q).empty()
        conn = jobs.redis_connection()
        for key in conn.scan_iter(f"*{prefix}*"):
            conn.delete(key)
        db.engine.dispose()
    print(f"\n== {label}: median POST /my over {n} requests each, ms ==")
    print(f"  {'':34} {'known phone':>12} {'unknown phone':>14} {'difference':>11}")
    for what, (k, u) in (("SMS by a background job (now)", queued), ("SMS inside the request (baseline)", inline),
                         ("of which: the lookup, even (now)", lookup_even),
                         ("the lookup as staff make it", lookup)):
        print(f"  {what:34} {k:>12.2f} {u:>14.2f} {k - u:>+11.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--skip-sqlite", action="store_true")
    args = ap.parse_args()
    redis_url = os.environ.get("REDIS_URL")
    with tempfile.TemporaryDirectory() as tmp:
        from crm import jobs
        from crm.security.keyring import init_keys

        init_keys(Path(tmp) / "keys")
        if not redis_url:
            jobs.start_embedded(Path(tmp))
        try:
            if not args.skip_sqlite:
                run("SQLite", f"sqlite:///{tmp}/bench.sqlite3", tmp, redis_url, args.requests)
            with postgres_databases("crm_bench") as urls:
                if urls:
                    run("PostgreSQL", urls[0], tmp, redis_url, args.requests)
        finally:
            if not redis_url:
                jobs.stop_embedded(Path(tmp))


if __name__ == "__main__":
    main()
