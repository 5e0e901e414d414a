"""KEK rotation without downtime (another process keeps creating and reading citizens), resumable
progress, retirement, and rotation of every blind-index key (phone, surname, name + building,
building) through its second column.

These tests run on an isolated keyring and key store (their own instance folder), sharing only the
main database with the rest of the suite, so the session's keys are never rotated under other tests."""
from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import os
import time

import pytest
import sqlalchemy as sa

from crm.citizens import services as citizens
from crm.citizens.models import Citizen
from crm.db import db
from crm.security import blind_index, crypto, keystore, rotation
from crm.security.keyring import init_keys
from tests.factories import AppealFactory, CitizenFactory


def _phone(i: int) -> str:
    return f"+7 912 {400 + i // 10000:03d}-{(i // 100) % 100:02d}-{i % 100:02d}"


@pytest.fixture()
def iso(ctx, app_config, tmp_path):
    """An app with its own instance folder (keys, key store, recordings) on the suite's main database."""
    from crm import create_app

    init_keys(tmp_path / "keys")
    cfg = {**app_config, "INSTANCE_PATH": str(tmp_path), "SQLALCHEMY_DATABASE_URI": ctx.config["SQLALCHEMY_DATABASE_URI"],
           "CRM_KEYRING_RELOAD_S": 0.2, "CRM_BIDX_STATE_TTL_S": 0.3, "WTF_CSRF_ENABLED": False,
           "CRM_DEK_POOL": 1, "CRM_ROTATION_BATCH": 20,
           "CRM_REDIS_SOCKET": ctx.config["CRM_REDIS_SOCKET"]}
    cfg.pop("CRM_KEYSTORE_URL", None)
    drop = None
    if ctx.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        from tests.conftest import _make_database

        cfg["CRM_KEYSTORE_URL"], drop = _make_database(os.environ["DATABASE_URL"])
    db.session.commit()
    app2 = create_app(cfg)
    app2.config["CRM_TEST_CFG"] = cfg
    with app2.app_context():
        yield app2
        db.session.remove()
        for e in db.engines.values():
            e.dispose()
    crypto.clear_caches()
    if drop:
        drop()


def _seed(n: int, offset: int = 0) -> list[str]:
    ids = []
    for i in range(n):
        c = CitizenFactory(full_name=f"Ротационный{i} Иван", phone=_phone(offset + i), address=f"ул. Тестовая, д. {i}",
                           commit=False)
        ids.append(c.id)
        if i % 50 == 49:
            db.session.commit()
    db.session.commit()
    return ids


def _churn(cfg: dict, seed_ids: list[str], ready, stop, out_path: str) -> None:
    """Child process: create a citizen and read citizens back (their data keys unwrapped afresh each
    time) until told to stop; write counts and the first errors to ``out_path``."""
    from crm import create_app
    from crm.citizens import services as cs
    from crm.citizens.models import Citizen as C
    from crm.db import db as d
    from crm.security import crypto as cr

    app = create_app(cfg)
    ok = failed = 0
    errors: list[str] = []
    mine: list[tuple[str, str]] = []
    with app.app_context():
        i = 0
        while not stop.is_set() or i < 5:
            try:
                phone = _phone(50000 + i)
                c = CitizenFactory(full_name=f"Фоновый{i} Пётр", phone=phone)
                mine.append((c.id, phone))
                cr.clear_caches()
                d.session.expire_all()
                for cid in (c.id, seed_ids[i % len(seed_ids)], mine[i // 2][0]):
                    card = cs.view(d.session.get(C, cid), purpose="appeal_processing", reveal=True)
                    assert card["full_name"] and card["phone"], card
                found = cs.find_by_phone(phone)
                assert [x.id for x in found] == [c.id], (found, c.id)
                ok += 1
            except Exception as exc:  # noqa: BLE001
                failed += 1
                d.session.rollback()
                if len(errors) < 5:
                    errors.append(f"{type(exc).__name__}: {exc}")
            if i == 2:
                ready.set()
            i += 1
        d.session.remove()
    with open(out_path, "w") as fh:
        json.dump({"ok": ok, "failed": failed, "errors": errors, "mine": [m[0] for m in mine]}, fh)


def test_rotation_while_another_process_creates_and_reads(iso, run_worker, tmp_path):
    seed = _seed(120)
    old = crypto.keyring().active_id
    spawn = mp.get_context("spawn")
    ready, stop = spawn.Event(), spawn.Event()
    out = tmp_path / "churn.json"
    child_cfg = {**iso.config["CRM_TEST_CFG"], "CRM_DEK_POOL": 8}  # the child reserves data keys in batches
    child = spawn.Process(target=_churn, args=(child_cfg, seed, ready, stop, str(out)))
    child.start()
    try:
        assert ready.wait(90), "the background process did not start"
        info = rotation.start_rotation()
        assert info["kek_id"] != old and info["job_id"]
        run_worker()  # the RQ job re-wraps every data key while the child keeps going
        time.sleep(1.0)
    finally:
        stop.set()
        child.join(120)
    assert child.exitcode == 0
    res = json.loads(out.read_text())
    assert res["failed"] == 0, res["errors"]
    print(f"background process: {res['ok']} create+read rounds, {res['failed']} failed")
    assert res["ok"] >= 5
    rot = next(r for r in keystore.rotations() if r.id == info["rotation_id"])
    assert rot.finished_at is not None and rot.done >= len(seed)
    counts = keystore.counts_by_kek()  # the child's unused reserved keys are there too (orphans, for gc)
    assert list(counts) == [info["kek_id"]] and counts[info["kek_id"]] >= len(seed) + len(res["mine"])
    rotation.retire(old)
    assert old not in crypto.keyring(force_reload=True).keks
    crypto.clear_caches()
    db.session.expire_all()
    for cid in seed[:10] + res["mine"][-10:]:
        assert db.session.get(Citizen, cid).full_name


def test_the_rewrap_job_id_carries_the_instance_prefix(iso):
    """Rotation ids start at 1 in every database: without the instance's CRM_QUEUE_PREFIX two instances
    (or test runs) on one Redis would replace each other's re-wrap job."""
    from rq.job import Job

    from crm import jobs

    prefix = iso.config["CRM_QUEUE_PREFIX"]
    assert prefix
    queue = jobs.queue(jobs.spec_of("crm.security.rotation.rewrap_job").queue)
    info = rotation.start_rotation()
    try:
        assert info["job_id"] == f"{prefix}keys-rotate-{info['rotation_id']}-{info['kek_id']}"
        assert Job.fetch(info["job_id"], connection=jobs.redis_connection()).origin == queue.name
    finally:
        queue.empty()


def test_rotation_is_resumable_shows_progress_and_retires(iso, runner):
    ids = _seed(50)
    old = crypto.keyring().active_id
    with pytest.raises(rotation.RotationError, match="active key"):
        rotation.retire(old)
    info = rotation.start_rotation(enqueue=False)
    with pytest.raises(rotation.RotationError, match=f"still wraps 50 data keys"):
        rotation.retire(old)
    part = rotation.run_rotation(info["rotation_id"], batch=10, max_batches=2, grace_s=0)
    assert part == {"done": 20, "total": 50, "finished": False}
    out = runner("keys", "status", app=iso)
    assert out.exit_code == 0, out.output
    assert f"#{info['rotation_id']} to {info['kek_id']}" in out.output and "20/50 done" in out.output
    assert "running or interrupted" in out.output
    # a crash here: a new run resumes from the stored cursor
    done = rotation.run_rotation(info["rotation_id"], batch=10, grace_s=0)
    assert done == {"done": 50, "total": 50, "finished": True}
    assert keystore.counts_by_kek() == {info["kek_id"]: 50}
    out = runner("keys", "retire", old, app=iso)
    assert out.exit_code == 0, out.output
    assert (iso.config["CRM_TEST_CFG"]["INSTANCE_PATH"] + f"/keys/retired/kek-{old}.key") in out.output
    crypto.clear_caches()
    db.session.expire_all()
    assert all(db.session.get(Citizen, cid).phone for cid in ids)
    status = runner("keys", "status", app=iso).output
    assert "50/50 done, finished" in status and f"{old}: 0 data keys" in status and "retired" in status


def test_cli_rotate_inline(iso, runner):
    _seed(5)
    out = runner("keys", "rotate", "--inline", app=iso)
    assert out.exit_code == 0, out.output
    assert "re-wrapped 5 data keys" in out.output
    assert "k2 (active): 5 data keys" in runner("keys", "status", app=iso).output


def test_phone_blind_index_key_rotates_through_the_second_column(iso, run_worker, runner):
    ids = _seed(30)
    phone = _phone(7)

    def lookup():
        return [c.id for c in citizens.find_by_phone(phone)]

    before = dict(db.session.execute(sa.select(Citizen.id, Citizen.phone_bidx)).all())
    assert lookup() == [ids[7]]
    with pytest.raises(rotation.RotationError, match="backfill has not finished"):
        rotation.index_switch("phone")
    info = rotation.index_start("phone")
    assert info["slot"] == "b" and info["key"] == "i2"
    with pytest.raises(rotation.RotationError, match="already under way"):
        rotation.index_start("phone")
    time.sleep(0.4)
    extra = CitizenFactory(full_name="Новый Житель", phone=_phone(99))  # writers fill both columns now
    assert extra.phone_bidx and extra.phone_bidx_b
    assert lookup() == [ids[7]]
    run_worker()  # backfill job
    rows = dict(db.session.execute(sa.select(Citizen.id, Citizen.phone_bidx_b)).all())
    assert all(rows[i] for i in ids)
    assert rotation.index_switch("phone") == "b"
    time.sleep(0.4)
    assert lookup() == [ids[7]]
    assert [c.id for c in citizens.find_by_phone(_phone(99))] == [extra.id]
    old_key = rotation.index_drop("phone")
    assert old_key == "i1"
    db.session.expire_all()
    assert db.session.execute(sa.select(sa.func.count()).select_from(Citizen)
                              .where(Citizen.phone_bidx.isnot(None))).scalar() == 0
    assert lookup() == [ids[7]]
    after = dict(db.session.execute(sa.select(Citizen.id, Citizen.phone_bidx_b)).all())
    assert sum(before[i] == after[i] for i in ids) < 5  # new key, new values (16-bit index: a few may collide)
    new = CitizenFactory(full_name="Ещё Один", phone=_phone(98))
    assert new.phone_bidx is None and new.phone_bidx_b
    # and once more, back into slot a, from the command line
    time.sleep(0.7)
    out = runner("keys", "index", "start", "phone", "--inline", app=iso)
    assert out.exit_code == 0, out.output
    assert "key i3 fills slot a" in out.output
    status = runner("keys", "status", app=iso).output
    assert "phone: slot a=i3 b=i2, reads slot b; backfill of slot a: 32/32" in status, status
    assert lookup() == [ids[7]]


# --- every blind index rotates the same way ---------------------------------------------------------

# (full name, address) of the citizens of the test below: shared surnames and buildings in several
# spellings (ё, capitals, commas, double spaces), and one without an address
_PEOPLE = [("Ёлкин Пётр Иванович", "ул. Садовая, д. 5"), ("ЁЛКИН Олег", "ул Садовая д 5"),
           ("Елкин Иван", "Ул. Садовая,  д.5"), ("Сидорова Анна", "ул. Садовая, д. 5"),
           ("Ёлкина Мария", None), ("Петров  Иван", "пр. Мира, 12"), ("петров иван", "пр. Мира, 12")]


def _person(i: int) -> dict:
    """The ``i``-th of :data:`_PEOPLE` as CitizenFactory fields (a phone of its own)."""
    name, address = _PEOPLE[i % len(_PEOPLE)]
    return {"full_name": name, "phone": _phone(700 + i), "address": address}


def _index_lookup(name: str, cid: str) -> set[str]:
    """Ids of the live citizens that index ``name`` finds for citizen ``cid``'s value, through the
    slot lookups read now (:func:`blind_index.lookup`), candidates decrypted and filtered."""
    source = rotation.ROTATABLE[name]
    value = source.normalised(db.session.get(Citizen, cid))
    column, key = blind_index.lookup(name, value)
    rows = db.session.execute(sa.select(Citizen).where(getattr(Citizen, column) == key,
                                                       Citizen.erased_at.is_(None))).scalars().all()
    return {c.id for c in rows if source.normalised(c) == value}


_TWINS = itertools.count()


def _service_lookup(name: str, cid: str, topic_appeal: dict[str, str]) -> bool:
    """Whether the application's own lookup through index ``name`` finds citizen ``cid`` (surname:
    no service searches by it; building: repeat detection finds the citizen's first appeal)."""
    from crm.appeals import services as appeals
    from crm.db import utcnow

    c = db.session.get(Citizen, cid)
    if name == "phone":
        return cid in [x.id for x in citizens.find_by_phone(c.phone)]
    if name == "name_building":
        return cid in [x.id for x in citizens.find_by_name_and_building(c.full_name.split()[0], c.address)]
    if name == "building" and cid in topic_appeal:
        # another citizen at the same building (same spelling), appealing on the same topic: a
        # repeat of the latest appeal made before the rotation at that building
        twin = CitizenFactory(full_name="Соседов Сосед", phone=_phone(900 + next(_TWINS)), address=c.address)
        same = [topic_appeal[x] for x in topic_appeal
                if citizens.building_value(db.session.get(Citizen, x).address) == citizens.building_value(c.address)]
        repeat = appeals.find_repeat_of(twin, "heating", utcnow())
        db.session.delete(twin)
        db.session.commit()
        return repeat is not None and repeat.id in same
    return True


@pytest.mark.parametrize("name", ["phone", "surname", "name_building", "building"])
def test_every_blind_index_rotates_with_citizens_found_before_during_and_after(iso, name, runner):
    """Citizens registered before ``start``, between ``start`` and ``switch`` (before and after the
    backfill) and after ``switch`` and ``drop`` are all found by the index's lookup at every phase;
    ``drop`` leaves the old column NULL everywhere; erasure clears both slots at any phase; appeals
    keep matching by building (re-keyed by ``drop``)."""
    from crm.security import audit, shredding

    a_col, b_col = blind_index.SLOTS[name]
    live: list[str] = []
    first_appeal: dict[str, str] = {}  # citizen id -> id of its appeal made before the rotation
    n = 0

    def add(k: int = 2) -> None:
        nonlocal n
        for _ in range(k):
            live.append(CitizenFactory(**_person(n)).id)
            n += 1

    def check(phase: str) -> None:
        db.session.expire_all()
        for cid in live:
            c = db.session.get(Citizen, cid)
            if rotation.ROTATABLE[name].normalised(c) is None:
                assert getattr(c, a_col) is None and getattr(c, b_col) is None, (phase, cid)
                continue
            assert cid in _index_lookup(name, cid), (phase, cid)
            assert _service_lookup(name, cid, first_appeal), (phase, cid)

    def erase_one() -> None:
        cid = live.pop(0)
        shredding.erase_citizen(cid, "test: consent withdrawn", actor=audit.system_actor("test"))
        db.session.expire_all()
        c = db.session.get(Citizen, cid)
        assert all(getattr(c, col) is None for col in Citizen.BLIND_INDEX_COLUMNS), cid

    add(len(_PEOPLE))  # before
    for cid in live[:4]:
        first_appeal[cid] = AppealFactory(citizen=db.session.get(Citizen, cid)).id
    before = dict(db.session.execute(sa.select(Citizen.id, getattr(Citizen, a_col))).all())
    check("before")
    info = rotation.index_start(name, enqueue=False)
    assert info["slot"] == "b"
    time.sleep(0.4)  # the state cache's TTL
    add()  # during, before the backfill
    assert all(getattr(db.session.get(Citizen, cid), b_col) for cid in live[-2:]
               if rotation.ROTATABLE[name].normalised(db.session.get(Citizen, cid)))
    check("started")
    assert rotation.run_index_backfill(name)["finished"]
    add()  # during, after the backfill
    check("backfilled")
    erase_one()
    assert rotation.index_switch(name) == "b"
    check("switched")
    add()  # after the switch
    check("switched+")
    assert rotation.index_drop(name) == "i1"
    db.session.expire_all()
    assert db.session.execute(sa.select(sa.func.count()).select_from(Citizen)
                              .where(getattr(Citizen, a_col).isnot(None))).scalar() == 0
    add()  # after the drop
    new = db.session.get(Citizen, live[-1])
    assert getattr(new, a_col) is None and getattr(new, b_col)
    check("dropped")
    after = dict(db.session.execute(sa.select(Citizen.id, getattr(Citizen, b_col))).all())
    assert sum(1 for cid, v in before.items() if v and v == after.get(cid)) <= 1  # new key, new values
    erase_one()
    check("erased")
    status = runner("keys", "status", app=iso).output
    assert f"  {name}: slot a=None b=i2, reads slot b" in status, status


@pytest.mark.parametrize("name", ["phone", "surname", "name_building", "building"])
def test_the_backfill_computes_exactly_what_the_writers_compute(iso, name):
    """Slot b filled by the backfill equals what register/update write into it: re-saving every
    citizen with its own data (the writer filling both slots) changes no value."""
    ids = [CitizenFactory(**_person(i)).id for i in range(len(_PEOPLE))]
    rotation.index_start(name, enqueue=False)
    assert rotation.run_index_backfill(name, batch=3)["finished"]
    b_col = blind_index.SLOTS[name][1]
    db.session.expire_all()
    backfilled = {cid: getattr(db.session.get(Citizen, cid), b_col) for cid in ids}
    assert sum(v is not None for v in backfilled.values()) >= len(ids) - 1
    for i, cid in enumerate(ids):
        c = db.session.get(Citizen, cid)
        data = CitizenFactory.build(**_person(i))
        assert rotation.ROTATABLE[name].normalised(c) == citizens.index_values(
            " ".join(data.full_name.split()), c.phone, " ".join((data.address or "").split()) or None)[name]
        citizens.update(c, citizens.CitizenData(c.full_name, c.phone, c.email, c.address, c.apartment))
    db.session.expire_all()
    assert {cid: getattr(db.session.get(Citizen, cid), b_col) for cid in ids} == backfilled


@pytest.mark.parametrize("changed", ["full_name_enc", "address_enc"])
def test_the_backfill_leaves_a_citizen_changed_meanwhile_to_its_writer(iso, changed):
    """The optimistic check compares both ciphertext columns of the compound index: a citizen whose
    name or address changed between the backfill's read and its update keeps what its writer put
    in the new slot; the others get the backfilled value."""
    cid, other = (CitizenFactory(**_person(i)).id for i in range(2))
    rotation.index_start("name_building", enqueue=False)
    real = rotation.ROTATABLE["name_building"]

    def writer_meanwhile(c):
        value = real.normalised(c)
        if c.id == cid:  # a writer's change lands after the read (the loaded row is not refreshed)
            db.session.execute(sa.update(Citizen.__table__).where(Citizen.__table__.c.id == cid)
                               .values({changed: b"new ciphertext", "name_building_bidx_b": "feed"}))
        return value

    rotation.ROTATABLE["name_building"] = rotation.IndexSource(writer_meanwhile, real.ciphertext)
    try:
        assert rotation.run_index_backfill("name_building")["finished"]
    finally:
        rotation.ROTATABLE["name_building"] = real
    row = db.session.execute(sa.select(Citizen.name_building_bidx_b).where(Citizen.id == cid)).scalar_one()
    assert row == "feed"
    c = db.session.get(Citizen, other)
    assert c.name_building_bidx_b == blind_index.compute("name_building", real.normalised(c), "i2")


def test_cli_index_takes_every_index_name_in_either_order(iso, runner):
    from crm.security.cli import _INDEX_NAMES

    assert set(_INDEX_NAMES) == set(rotation.ROTATABLE) == set(blind_index.SLOTS)
    CitizenFactory(**_person(0))
    out = runner("keys", "index", "surname", "start", "--inline", app=iso)
    assert out.exit_code == 0, out.output
    assert "blind index surname: key i2 fills slot b" in out.output and "backfilled 1 citizens" in out.output
    status = runner("keys", "status", app=iso).output
    for n in ("phone", "name_building", "building"):
        assert f"  {n}: slot a=i1 b=None, reads slot a" in status, status
    assert "  surname: slot a=i1 b=i2, reads slot a; backfill of slot b: 1/1" in status, status
    out = runner("keys", "index", "switch", "surname", app=iso)  # waits out the state cache's TTL
    assert out.exit_code == 0 and "lookups read slot b" in out.output, out.output
    out = runner("keys", "index", "streets", "start", app=iso)
    assert out.exit_code != 0 and "unknown blind index" in out.output


def test_rotation_resumes_when_its_cursor_key_was_erased_and_skips_keys_changed_meanwhile(iso):
    """The first pass walks the key store in stored order (SQLite: rowid) from the stored cursor; a
    resumed run whose cursor key has gone meanwhile still re-wraps everything, and a batch never
    writes over a key deleted or re-wrapped between its read and its update."""
    ids = _seed(40)
    old_kek = crypto.keyring().active_id
    info = rotation.start_rotation(enqueue=False)
    target = info["kek_id"]
    part = rotation.run_rotation(info["rotation_id"], batch=10, max_batches=1, grace_s=0)
    assert part["done"] == 10 and not part["finished"]
    rot = next(r for r in keystore.rotations() if r.id == info["rotation_id"])
    assert rot.cursor
    # the cursor's data key is erased before the job resumes
    owner = keystore.find(rot.cursor).owner_id
    assert keystore.delete_owner(owner) == 1
    crypto.forget_cached_key(owner_id=owner)
    # a batch read, then one of its keys deleted and another re-wrapped by someone else
    rows = keystore.rewrap_scan(target, keystore.scan_start(None), 5)
    assert len(rows) == 5 and all(r.kek_id != target for r in rows)
    gone, taken = rows[0], rows[1]
    keystore.delete_owner(gone.owner_id)
    ring = crypto.keyring()
    dek = crypto.unwrap_dek(ring, taken.wrapped, taken.id, taken.owner_id)
    theirs = crypto.wrap_dek(ring, dek, taken.id, taken.owner_id, target)[1]
    with keystore.writer() as conn:
        conn.execute(sa.text("UPDATE data_keys SET kek_id = :k, wrapped = :w WHERE id = :id"),
                     {"k": target, "w": theirs, "id": taken.id})
    ours = [crypto.wrap_dek(ring, crypto.unwrap_dek(ring, r.wrapped, r.id, r.owner_id), r.id, r.owner_id, target)[1]
            if r.id != taken.id else b"\x01not-this" for r in rows]
    with keystore.writer() as conn:
        assert keystore.rewrap_update(conn, target, rows, ours) == 3
    assert keystore.find(gone.id) is None  # not resurrected
    assert keystore.find(taken.id).wrapped == theirs  # not overwritten
    done = rotation.run_rotation(info["rotation_id"], batch=10, grace_s=0)
    assert done["finished"]
    assert keystore.counts_by_kek() == {target: 38}
    # a key still under the old KEK (made by a process that had not reloaded) is a straggler
    # (any citizen whose key is still there: the two erased above are random picks of the key order)
    late = next(k for k in map(keystore.find_by_owner, reversed(ids)) if k is not None)
    old_wrapped = crypto.wrap_dek(ring, crypto.unwrap_dek(ring, late.wrapped, late.id, late.owner_id),
                                  late.id, late.owner_id, old_kek)[1]
    with keystore.writer() as conn:
        conn.execute(sa.text("UPDATE data_keys SET kek_id = :k, wrapped = :w WHERE id = :id"),
                     {"k": old_kek, "w": old_wrapped, "id": late.id})
    found = keystore.stragglers(target, 10)
    assert [r.id for r in found] == [late.id]
    new_wrapped = crypto.wrap_dek(ring, crypto.unwrap_dek(ring, found[0].wrapped, late.id, late.owner_id),
                                  late.id, late.owner_id, target)[1]
    with keystore.writer() as conn:
        assert keystore.rewrap_update(conn, target, found, [new_wrapped]) == 1
    assert keystore.counts_by_kek() == {target: 38}
    crypto.clear_caches()
    db.session.expire_all()
    left = [cid for cid in ids if cid not in (owner, gone.owner_id)]
    assert all(db.session.get(Citizen, cid).phone for cid in left)


def test_rotation_batches_larger_than_a_page_of_the_table(iso):
    """One batch for all keys, then batches of one: both cover every key exactly once."""
    _seed(60)
    info = rotation.start_rotation(enqueue=False)
    assert rotation.run_rotation(info["rotation_id"], batch=1000, grace_s=0) == {"done": 60, "total": 60,
                                                                                "finished": True}
    info = rotation.start_rotation(enqueue=False)
    assert rotation.run_rotation(info["rotation_id"], batch=1, grace_s=0) == {"done": 60, "total": 60,
                                                                             "finished": True}
    assert keystore.counts_by_kek() == {info["kek_id"]: 60}


def test_key_store_reads_survive_a_dropped_connection(iso):
    """Data-key reads run without a pre-ping; a pooled connection the server has closed (a
    restart) is replaced and the read retried once."""
    if db.engines["keystore"].dialect.name != "postgresql":
        pytest.skip("needs a key-store server that can drop a connection")
    ids = _seed(3)
    eng = db.engines["keystore"]
    with eng.connect() as conn:  # the connection the next read will get from the pool
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
    admin = sa.create_engine(eng.url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    admin.dispose()
    time.sleep(0.2)
    assert keystore.find_by_owner(ids[0]).owner_id == ids[0]
    assert {r.owner_id for r in keystore.find_many_by_owner(ids)} == set(ids)


def test_a_failed_batch_stops_the_rotation_with_only_whole_batches_committed_before_it(iso, monkeypatch):
    """Batches may be written side by side (PostgreSQL), but progress is committed in order: when
    the third batch fails, the first two are recorded, nothing after them is, and a new run
    finishes the rotation."""
    _seed(60)
    info = rotation.start_rotation(enqueue=False)
    real = keystore.rewrap_update
    calls = []

    def flaky(conn, target, rows, wrapped):
        calls.append(len(rows))
        if len(calls) == 3:
            raise sa.exc.OperationalError("UPDATE", {}, Exception("key store went away"))
        return real(conn, target, rows, wrapped)

    monkeypatch.setattr(keystore, "rewrap_update", flaky)
    with pytest.raises(sa.exc.OperationalError, match="went away"):
        rotation.run_rotation(info["rotation_id"], batch=10, grace_s=0)
    rot = next(r for r in keystore.rotations() if r.id == info["rotation_id"])
    assert rot.done == 20 and rot.finished_at is None
    assert keystore.counts_by_kek()[info["kek_id"]] == 20
    monkeypatch.setattr(keystore, "rewrap_update", real)
    assert rotation.run_rotation(info["rotation_id"], batch=10, grace_s=0) == {"done": 60, "total": 60,
                                                                              "finished": True}
