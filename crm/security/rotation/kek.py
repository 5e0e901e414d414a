"""KEK (key-encryption key) rotation (``crm keys rotate``): a new KEK is added to ``instance/keys/`` and promoted
(:func:`start_rotation`); every running process notices within ``CRM_KEYRING_RELOAD_S`` seconds
(and at once when it meets a data key wrapped by a KEK it has not loaded) and wraps new data keys
with it. A background job (RQ, :func:`crm.security.rotation.rewrap_job`) re-wraps the existing data keys in batches of
``CRM_ROTATION_BATCH``, read in ``rowid`` order on SQLite (the order rows are stored in; random
UUID ids would touch the table's pages at random) and in id order on PostgreSQL (keyset pagination
on the primary key), and written back in one bulk update that only touches a row still under the
KEK it was read with (:func:`crm.security.keystore.rewrap_update`: SQLite executemany, PostgreSQL
one ``UPDATE … FROM unnest(…)``), committed together with the progress in ``key_rotations``
(``done``, ``cursor`` = the last data key id of the first pass), so a killed job resumes where it
stopped. On PostgreSQL the next batch is read and re-wrapped while earlier ones are being written
(``CRM_ROTATION_WRITERS``, committed in order; the server's work overlaps the job's own); not on
SQLite, whose single write lock must be left free between batches for the application's writers.
The bulk update bypasses ORM events (sqlalchemy#9339); nothing is derived from wrapped keys, so
nothing goes stale. The DEKs themselves do not change: no ciphertext is
touched, reads and writes go on throughout. When a pass finds nothing left under another KEK the
rotation is finished; ``crm keys retire ID`` then moves the old KEK out of the keyring, refusing
while any data key still uses it.
"""
from __future__ import annotations

import os
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from crm import jobs
from crm.db import db, utcnow
from crm.security import audit, keystore
from crm.security.crypto import keyring, reset_keyring, unwrap_dek, wrap_dek
from crm.security.keyring import KeyError_, add_kek, retire_kek
from crm.security.models import DataKey, KeyRotation
from crm.security.rotation.errors import RotationError

_dk = DataKey.__table__
_rot = KeyRotation.__table__
#: the RQ job that runs a rotation (declared in crm.security.rotation: its dotted name is stored in queued jobs)
REWRAP_JOB = "crm.security.rotation.rewrap_job"


def start_rotation(*, enqueue: bool = True, new_key: bool = True) -> dict:
    """Add and promote a new KEK (unless ``new_key`` is False: re-wrap under the current active key,
    e.g. one injected through the environment), record a rotation and enqueue its job.
    Returns ``{"rotation_id", "kek_id", "total", "job_id"}``."""
    keys_dir = Path(current_app.config["CRM_KEYS_DIR"])
    keystore.ensure()
    if new_key:
        if current_app.config["CRM_KEK_FROM_ENV"] or _env_active():
            raise RotationError("the active KEK comes from the environment (CRM_KEK_ACTIVE): add CRM_KEK_<ID>, "
                                "set CRM_KEK_ACTIVE=<ID>, restart, then run `crm keys rotate --no-new-key`")
        kid = add_kek(keys_dir)
        reset_keyring()
    ring = keyring(force_reload=True)
    kid = ring.active_id
    keystore.register_keks(ring, [kid])
    with keystore.writer() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(_dk).where(_dk.c.kek_id != kid)).scalar_one()
        rid = conn.execute(_rot.insert().values(target_kek_id=kid, started_at=utcnow(), total=total, done=0)
                           .returning(_rot.c.id)).scalar_one()
    audit.record("keys.rotate", detail=f"KEK {kid} active; rotation {rid}: {total} data keys to re-wrap",
                 actor=audit.system_actor("keys_rotate"))
    db.session.commit()
    job_id = None
    if enqueue:
        job_id = jobs.enqueue(REWRAP_JOB, rid, timeout_s=600 + total // 2000, job_id=_job_id(rid, kid)).id
        with keystore.writer() as conn:
            conn.execute(_rot.update().where(_rot.c.id == rid).values(job_id=job_id))
    return {"rotation_id": rid, "kek_id": kid, "total": total, "job_id": job_id}


def _job_id(rotation_id: int, kek_id: str) -> str:
    """The re-wrap job's RQ id: one per rotation (enqueuing it again replaces, never doubles), with the
    instance's ``CRM_QUEUE_PREFIX`` like every other key, since rotation ids start at 1 in every database:
    two instances (or test runs) sharing one Redis would otherwise replace each other's job."""
    return f"{current_app.config['CRM_QUEUE_PREFIX']}keys-rotate-{rotation_id}-{kek_id}"


def _env_active() -> bool:
    return bool(os.environ.get("CRM_KEK_ACTIVE"))


def run_rotation(rotation_id: int, *, batch: int | None = None, grace_s: float | None = None,
                 max_batches: int | None = None) -> dict:
    """Re-wrap every data key not under the rotation's target KEK.

    First pass: in the key store's stored order (:func:`crm.security.keystore.rewrap_scan`) from
    the stored cursor, ``batch`` keys at a time; on PostgreSQL the next batch is read and re-wrapped
    while up to ``CRM_ROTATION_WRITERS`` earlier ones are being written (helper threads; batches
    still commit one after the other, in order). Then passes over whatever is still under another
    KEK (data keys made by processes that had not yet noticed the new active key), until one finds
    none and at least ``grace_s`` seconds (default: twice the keyring reload interval) have passed
    since the rotation started.
    ``max_batches`` stops early (tests of resumption). Returns ``{"done", "total", "finished"}``."""
    batch = batch or int(current_app.config["CRM_ROTATION_BATCH"])
    if grace_s is None:
        grace_s = 2 * float(current_app.config["CRM_KEYRING_RELOAD_S"]) + 0.5
    eng = keystore.engine()
    with eng.connect() as conn:
        rot = conn.execute(sa.select(_rot).where(_rot.c.id == rotation_id)).first()
    if rot is None:
        raise RotationError(f"no key rotation {rotation_id}")
    if rot.finished_at is not None:
        return {"done": rot.done, "total": rot.total, "finished": True}
    target = rot.target_kek_id
    ring = keyring(force_reload=True)
    ring.kek(target)  # raises naming the target KEK when this worker does not have it
    writer = eng.execution_options(crm_write=True)  # as keystore.writer(), without the app context (thread)

    def commit(rows: list, wrapped: list[bytes], first: bool, after: Future | None = None) -> None:
        """Write one batch and its progress in one key-store transaction; with ``after`` (the
        previous batch's write), record the progress and commit only once that one has committed."""
        with writer.begin() as conn:
            n = keystore.rewrap_update(conn, target, rows, wrapped)
            if after is not None:
                after.result()  # its error rolls this batch back too
            values = {"done": _rot.c.done + n}
            if first:
                values["cursor"] = rows[-1].id
            conn.execute(_rot.update().where(_rot.c.id == rotation_id).values(**values))

    def rewrap(rows: list) -> list[bytes]:
        nonlocal ring
        out = []
        for r in rows:
            try:
                dek = unwrap_dek(ring, r.wrapped, r.id, r.owner_id)
            except KeyError_:
                ring = keyring(force_reload=True)
                dek = unwrap_dek(ring, r.wrapped, r.id, r.owner_id)
            out.append(wrap_dek(ring, dek, r.id, r.owner_id, target)[1])
        return out

    pos = keystore.scan_start(rot.cursor)
    batches = 0
    started = time.monotonic()
    # First pass. On a server database up to CRM_ROTATION_WRITERS batches are being written by
    # helper threads while this thread reads and re-wraps the next one (rows after the last batch's
    # position, so never the same rows). The writes run side by side, but each batch records its
    # progress and commits only after the one before it has committed, so the stored cursor always
    # has every earlier batch committed behind it. Not on SQLite: there a batch holds the database's
    # only write lock, and back-to-back batches would leave no gap for the application's writers
    # (new data keys) to take it.
    writers = max(1, int(current_app.config["CRM_ROTATION_WRITERS"])) if eng.dialect.name != "sqlite" else 0
    with ThreadPoolExecutor(max_workers=max(writers, 1), thread_name_prefix="keys-rewrap") as pool:
        inflight: deque[Future] = deque()
        while max_batches is None or batches < max_batches:
            rows = keystore.rewrap_scan(target, pos, batch)
            if not rows:
                break
            wrapped = rewrap(rows)
            if not writers:
                commit(rows, wrapped, True)
            else:
                while len(inflight) >= writers:
                    inflight.popleft().result()  # raises a failed batch's error
                inflight.append(pool.submit(commit, rows, wrapped, True, inflight[-1] if inflight else None))
            pos = rows[-1].pos
            batches += 1
    for fut in inflight:  # leaving the executor waited for them: raise the first failure
        fut.result()
    # Then passes over the stragglers (through the kek_id index), one batch at a time.
    while max_batches is None or batches < max_batches:
        rows = keystore.stragglers(target, batch)
        if not rows:
            if time.monotonic() - started >= grace_s:
                break
            time.sleep(min(0.5, grace_s))
            continue
        commit(rows, rewrap(rows), False)
        batches += 1
    if max_batches is not None and batches >= max_batches:
        with eng.connect() as conn:
            rot = conn.execute(sa.select(_rot).where(_rot.c.id == rotation_id)).first()
        return {"done": rot.done, "total": rot.total, "finished": False}
    with keystore.writer() as conn:
        conn.execute(_rot.update().where(_rot.c.id == rotation_id).values(finished_at=utcnow()))
        rot = conn.execute(sa.select(_rot).where(_rot.c.id == rotation_id)).first()
    audit.record("keys.rewrap", detail=f"rotation {rotation_id}: {rot.done} data keys re-wrapped under {target}",
                 actor=audit.system_actor("keys_rotate"))
    db.session.commit()
    return {"done": rot.done, "total": rot.total, "finished": True}


def rewrap_all(batch: int = 1000) -> int:
    """Re-wrap, in this process, every data key not yet under the active KEK (no new key).
    Returns how many were re-wrapped."""
    info = start_rotation(enqueue=False, new_key=False)
    return run_rotation(info["rotation_id"], batch=batch, grace_s=0)["done"]


def retire(kid: str) -> Path:
    """Retire KEK ``kid``: refuse while it is active or any data key uses it; else move its file to
    ``instance/keys/retired/`` and mark its record. Returns the new path. Raises :class:`RotationError`."""
    ring = keyring(force_reload=True)
    if kid == ring.active_id:
        raise RotationError(f"key-encryption key {kid!r} is the active key: run `crm keys rotate` first")
    n = keystore.count_for_kek(kid)
    if n:
        raise RotationError(f"key-encryption key {kid!r} still wraps {n} data keys: wait for the rotation "
                            "to finish (`crm keys status`)")
    try:
        path = retire_kek(Path(current_app.config["CRM_KEYS_DIR"]), kid)
    except KeyError_ as exc:
        raise RotationError(str(exc)) from None
    keystore.mark_retired(kid)
    reset_keyring()
    audit.record("keys.retire", detail=f"KEK {kid} retired", actor=audit.system_actor("keys_retire"))
    db.session.commit()
    return path
