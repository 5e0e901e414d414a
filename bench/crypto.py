"""Field-encryption benchmark: phone lookup through the blind index at 1M citizens next to a
decrypt-and-scan baseline, encryption cost per created citizen, DEKs re-wrapped per second.

    .venv/bin/python bench/crypto.py [--citizens 1000000] [--sample 10000] [--lookups 1000] [--create 2000]
                                     [--only sqlite|postgresql] [--parts lookup,scan,create,rotation]

Runs on SQLite (temp files: main database and key store) and, when DATABASE_URL is set, on
PostgreSQL too (two throwaway databases: main and key store). Prints figures; asserts nothing.

* The citizens are bulk-inserted with ciphertext precomputed by the application's own functions
  (one DEK per citizen, wrapped by the KEK; name and phone sealed; phone and surname blind
  indexes), because registering 1M citizens one by one would take an hour. Creation cost is
  measured separately on ``--create`` citizens through ``citizens.register`` (the real path:
  validation, encryption, blind indexes, access-log entry, commit), with encryption and with it
  switched off (plaintext bytes in the same columns, plain values in the index columns, no data key).
* Lookup: ``citizens.find_by_phone`` (blind-index query, data keys of the candidates fetched from
  the key store and unwrapped, candidates decrypted and filtered, access-log entry, commit) with a
  cold data-key cache before every lookup; and the same without the access-log commit.
* Baseline: decrypt-and-scan (what one would do without a blind index) measured on ``--sample`` rows
  (keys fetched from the key store in batches of 500, then every phone decrypted) and extrapolated
  linearly to the full table — it is not run over 1M rows.
* Rotation: ``crm keys rotate`` over all data keys in this process (bulk UPDATE via executemany,
  ``CRM_ROTATION_BATCH`` per committed batch).

Targets (issue): lookup median ≤ 5 ms at 1M; encryption adds ≤ 1 ms per citizen; rotation ≥ 10,000 DEKs/s.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scratch import postgres_databases  # noqa: E402 (bench/ is the script's own folder on sys.path)

SURNAMES = ["Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов", "Новиков",
            "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров", "Павлов", "Козлов"]
NAMES = ["Иван", "Пётр", "Анна", "Мария", "Ольга", "Сергей", "Алексей", "Елена", "Наталья", "Дмитрий"]


def phone_of(i: int) -> str:
    return f"+7912{i:07d}"


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def _app(url: str, keystore_url: str, instance: str, expected: int):
    from crm import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url, "CRM_KEYSTORE_URL": keystore_url, "INSTANCE_PATH": instance,
                       "SECRET_KEY": "bench", "CRM_CONTROLLER_NAME": "bench", "CRM_CONTROLLER_ADDRESS": "bench", "REDIS_URL": "redis://127.0.0.1:1/0", "CRM_EXPECTED_CITIZENS": expected,
                       "TESTING": True})


def bulk_load(n: int, chunk: int = 20000) -> float:
    """Insert ``n`` citizens and their data keys with precomputed ciphertext. Returns seconds."""
    import sqlalchemy as sa

    from crm.citizens.models import Citizen
    from crm.db import db
    from crm.security import blind_index, crypto, keystore
    from crm.security.models import DataKey

    from flask import current_app

    ring = crypto.keyring()
    bits = blind_index.configured_bits(current_app.config)
    k_phone = blind_index._key("phone")
    k_surname = blind_index._key("surname")
    main_eng, ks_eng = db.engines[None], keystore.engine()
    ct, kt = Citizen.__table__, DataKey.__table__
    now = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    rnd = random.Random(1)
    for start in range(0, n, chunk):
        rows, keys = [], []
        for i in range(start, min(n, start + chunk)):
            cid, dek_id, dek = str(uuid.uuid4()), str(uuid.uuid4()), os.urandom(32)
            surname = rnd.choice(SURNAMES)
            name = f"{surname} {rnd.choice(NAMES)} {i}"
            phone = phone_of(i)
            _, wrapped = crypto.wrap_dek(ring, dek, dek_id, cid)
            rows.append({"id": cid, "created_at": now,
                         "full_name_enc": crypto.seal_field(dek, dek_id, name.encode(),
                                                            crypto.field_aad("citizens", "full_name", cid, cid)),
                         "phone_enc": crypto.seal_field(dek, dek_id, phone.encode(),
                                                        crypto.field_aad("citizens", "phone", cid, cid)),
                         "phone_bidx": blind_index.mac_value(k_phone, phone, bits),
                         "surname_bidx": blind_index.mac_value(k_surname, blind_index.normalise_name(surname), bits)})
            keys.append({"id": dek_id, "owner_id": cid, "kek_id": ring.active_id, "wrapped": wrapped, "created_at": now})
        with main_eng.begin() as conn:
            conn.execute(ct.insert(), rows)
        with ks_eng.begin() as conn:
            conn.execute(kt.insert(), keys)
        done = min(n, start + chunk)
        if done % 200000 == 0 or done == n:
            el = time.perf_counter() - t0
            print(f"  loaded {done:,} citizens in {el:.0f} s ({done / el:,.0f}/s)", flush=True)
    if main_eng.dialect.name == "postgresql":
        with main_eng.begin() as conn:
            conn.execute(sa.text("ANALYZE citizens"))
        with ks_eng.begin() as conn:
            conn.execute(sa.text("ANALYZE data_keys"))
    else:
        with main_eng.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    return time.perf_counter() - t0


def bench_lookup(n: int, lookups: int) -> None:
    from crm.citizens import services as citizens
    from crm.citizens.models import Citizen
    from crm.db import db
    from crm.security import blind_index, crypto

    rnd = random.Random(7)
    picks = [rnd.randrange(n) for _ in range(lookups)]
    spell = lambda p: f"8 {p[2:5]} {p[5:8]}-{p[8:10]}-{p[10:]}"  # noqa: E731

    def cold():
        crypto._DEK_CACHE.clear()
        crypto._OWNER_CACHE.clear()
        db.session.expunge_all()

    # through the service (with the access-log entry and its commit)
    times, candidates = [], []
    for i in picks:
        cold()
        t = time.perf_counter()
        found = citizens.find_by_phone(spell(phone_of(i)))
        times.append((time.perf_counter() - t) * 1000)
        assert len(found) == 1 and found[0].phone == phone_of(i)
    # the lookup alone: normalise, blind index, query, fetch + unwrap keys, decrypt, filter
    core = []
    for i in picks:
        cold()
        t = time.perf_counter()
        e164 = citizens.normalise_phone(spell(phone_of(i)))
        col, val = blind_index.lookup("phone", e164)
        cands = db.session.execute(db.select(Citizen).where(getattr(Citizen, col) == val,
                                                            Citizen.erased_at.is_(None))).scalars().all()
        found = citizens._filter(cands, lambda c: c.phone == e164)
        core.append((time.perf_counter() - t) * 1000)
        candidates.append(len(cands))
        db.session.rollback()
        assert len(found) == 1
    from flask import current_app

    bits = blind_index.configured_bits(current_app.config)
    print(f"  blind index: {bits} bits; candidates per lookup: mean {statistics.mean(candidates):.1f}, "
          f"max {max(candidates)}")
    print(f"  lookup via find_by_phone (incl. access-log commit): median {statistics.median(times):.2f} ms, "
          f"p99 {_pct(times, 99):.2f} ms  ({lookups} lookups, cold data-key cache)")
    print(f"  lookup alone (index + decrypt candidates):          median {statistics.median(core):.2f} ms, "
          f"p99 {_pct(core, 99):.2f} ms")


def bench_scan_baseline(n: int, sample: int) -> None:
    import sqlalchemy as sa

    from crm.citizens.models import Citizen
    from crm.db import db
    from crm.security import crypto, keystore

    rows = db.session.execute(sa.select(Citizen.id, Citizen.phone_enc).limit(sample)).all()
    crypto._DEK_CACHE.clear()
    target = phone_of(n - 1)
    t = time.perf_counter()
    rows = db.session.execute(sa.select(Citizen.id, Citizen.phone_enc).limit(sample)).all()
    hits = 0
    for i in range(0, len(rows), 500):
        part = rows[i:i + 500]
        deks = {r.owner_id: (r.id, crypto.unwrap_dek(crypto.keyring(), r.wrapped, r.id, r.owner_id))
                for r in keystore.find_many_by_owner([p.id for p in part])}
        for cid, blob in part:
            dek_id, dek = deks[cid]
            if crypto.open_field(dek, blob, crypto.field_aad("citizens", "phone", cid, cid)).decode() == target:
                hits += 1
    dt = time.perf_counter() - t
    per_row_us = dt / len(rows) * 1e6
    print(f"  baseline decrypt-and-scan: {len(rows):,} rows in {dt * 1000:.0f} ms ({per_row_us:.1f} µs/row) "
          f"→ extrapolated to {n:,} rows: {per_row_us * n / 1e6:,.1f} s per lookup (linear extrapolation from the sample)")
    db.session.rollback()


def bench_create(k: int) -> None:
    from unittest import mock

    from crm.citizens import services as citizens
    from crm.db import db
    from crm.security import blind_index, crypto
    from crm.security.fields import Encrypted

    def run(label_offset: int) -> list[float]:
        out = []
        for j in range(k):
            i = 9_000_000 + label_offset + j
            data = citizens.CitizenData(f"Созданный Житель {j}", phone_of(i), f"u{j}@example.ru",
                                        f"ул. Бенчмарковая, д. {j % 50}", str(j % 200))
            t = time.perf_counter()
            citizens.register(data)
            out.append((time.perf_counter() - t) * 1000)
            if j % 200 == 0:
                db.session.expunge_all()
        return out

    def plain_set(self, obj, value):
        setattr(obj, self.column, None if value is None else str(value).encode())

    run(0)  # warm up (and fill the first data-key batch)
    with_enc, without = [], []
    rounds = 10
    k_all, k = k, max(1, k // rounds)
    for r in range(rounds):  # interleaved, so a database growing or warming up favours neither side
        with_enc += run(100_000 + r * k)
        with mock.patch.object(Encrypted, "__set__", plain_set), \
                mock.patch.object(blind_index, "compute", lambda name, normalised, version="i1": normalised[:32]), \
                mock.patch.object(crypto, "reserve_owner_id", lambda: str(uuid.uuid4())):
            without += run(200_000 + r * k)
    k = k_all
    m_with, m_without = statistics.median(with_enc), statistics.median(without)
    print(f"  create citizen via citizens.register: with encryption median {m_with:.2f} ms (mean "
          f"{statistics.mean(with_enc):.2f}), without {m_without:.2f} ms (mean {statistics.mean(without):.2f}) "
          f"→ encryption adds {m_with - m_without:.2f} ms median, {statistics.mean(with_enc) - statistics.mean(without):.2f} ms mean "
          f"({k} citizens each; 5 fields sealed, 4 blind indexes, 1 data key from a batch of "
          f"{__import__('flask').current_app.config['CRM_DEK_POOL']})")
    # the pieces
    dek, dek_id = os.urandom(32), str(uuid.uuid4())
    aad = crypto.field_aad("citizens", "full_name", dek_id, dek_id)
    t = time.perf_counter()
    for _ in range(20000):
        crypto.seal_field(dek, dek_id, "Петров Иван Сергеевич".encode(), aad)
    seal_us = (time.perf_counter() - t) / 20000 * 1e6
    t = time.perf_counter()
    for _ in range(200):
        crypto.reserve_owner_id()
    reserve_us = (time.perf_counter() - t) / 200 * 1e6
    print(f"  pieces: seal one field {seal_us:.1f} µs; reserve a data key (batched commit) {reserve_us:.0f} µs")


def bench_rotation() -> None:
    from crm.security import keystore, rotation

    n = sum(keystore.counts_by_kek().values())
    t = time.perf_counter()
    info = rotation.start_rotation(enqueue=False)
    res = rotation.run_rotation(info["rotation_id"], grace_s=0)
    dt = time.perf_counter() - t
    print(f"  rotation: {res['done']:,} of {n:,} data keys re-wrapped to {info['kek_id']} in {dt:.1f} s "
          f"→ {res['done'] / dt:,.0f} DEKs/s (batches of {__import__('flask').current_app.config['CRM_ROTATION_BATCH']})")


def run(label: str, url: str, keystore_url: str, instance: str, args) -> None:
    from flask_migrate import upgrade

    print(f"== {label}: {args.citizens:,} citizens ==", flush=True)
    app = _app(url, keystore_url, instance, max(args.citizens, 1000))
    with app.app_context():
        upgrade()
        from crm.db import db
        from crm.security import keystore

        keystore.ensure()
        load_s = bulk_load(args.citizens)
        print(f"  bulk load: {load_s:.0f} s", flush=True)
        if "lookup" in args.parts:
            bench_lookup(args.citizens, args.lookups)
        if "scan" in args.parts:
            bench_scan_baseline(args.citizens, args.sample)
        if "create" in args.parts:
            bench_create(args.create)
        if "rotation" in args.parts:
            bench_rotation()
        db.session.remove()
        for e in db.engines.values():
            e.dispose()


def main():
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)
    ap = argparse.ArgumentParser()
    ap.add_argument("--citizens", type=int, default=1_000_000)
    ap.add_argument("--sample", type=int, default=10_000)
    ap.add_argument("--lookups", type=int, default=1000)
    ap.add_argument("--create", type=int, default=2000)
    ap.add_argument("--only", choices=["sqlite", "postgresql"])
    ap.add_argument("--parts", default="lookup,scan,create,rotation",
                    help="comma-separated subset of lookup,scan,create,rotation (default: all)")
    args = ap.parse_args()
    args.parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = args.parts - {"lookup", "scan", "create", "rotation"}
    if unknown:
        ap.error(f"unknown parts: {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory() as tmp:
        from crm.security.keyring import init_keys

        init_keys(Path(tmp) / "keys")
        if args.only != "postgresql":
            run("SQLite", f"sqlite:///{tmp}/bench.sqlite3", f"sqlite:///{tmp}/bench-keys.sqlite3", tmp, args)
        if args.only != "sqlite":
            with postgres_databases("crm_bench", "crm_bench_keys") as urls:
                if urls:
                    run("PostgreSQL", urls[0], urls[1], tmp, args)


if __name__ == "__main__":
    main()
