"""Blind-index key rotation (every index of :data:`crm.security.blind_index.SLOTS`: ``phone``,
``surname``, ``name_building``, ``building``; ``crm keys index start|switch|drop NAME``):
``start`` adds a root key version and gives it the free slot (writers now fill both columns);
:func:`crm.security.rotation.index_backfill_job` recomputes the new slot for every citizen not erased (decrypting what
:data:`ROTATABLE` names, normalised by the writers' own functions), resumable by id; ``switch``
points lookups at the new slot once the backfill is done; ``drop`` clears the old slot's column and
its version. Each step waits out ``CRM_BIDX_STATE_TTL_S`` so no process acts on a stale state.
Erasure clears both slots of every index at every phase (the blind indexes the citizens' table
declares to :mod:`crm.security.registry`). Copies of an index's values elsewhere (``building`` on
appeals, :func:`crm.security.registry.register_index_copy`) are re-keyed by ``drop`` (:func:`index_drop`).
"""
from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from crm import jobs
from crm.db import db, utcnow
from crm.security import audit, blind_index, crypto, registry
from crm.security.crypto import KeyErased, reset_keyring
from crm.security.keyring import add_index_key
from crm.security.models import BlindIndexState
from crm.security.registry import IndexCopy, IndexSource
from crm.security.rotation.errors import RotationError

#: the RQ job that fills the new slot (declared in crm.security.rotation: its dotted name is stored in queued jobs)
BACKFILL_JOB = "crm.security.rotation.index_backfill_job"

#: index name -> how the backfill recomputes it (every index in blind_index.SLOTS with a slot b); filled
#: at start-up by the feature that owns the indexed table (crm.citizens.personal_data), through
#: :func:`crm.security.registry.register_blind_index`: this is the registry's own dict
ROTATABLE: dict[str, IndexSource] = registry.BLIND_INDEXES


def _state_row(name: str) -> BlindIndexState:
    row = db.session.get(BlindIndexState, name)
    if row is None:
        row = BlindIndexState(name=name, key_a="i1", key_b=None, read_slot="a", changed_at=utcnow())
        db.session.add(row)
        db.session.flush()
    return row


def _ttl() -> float:
    return float(current_app.config["CRM_BIDX_STATE_TTL_S"])


def _wait_since(row: BlindIndexState, what: str, wait: bool) -> None:
    age = (utcnow() - row.changed_at).total_seconds()
    need = 2 * _ttl() + 0.5
    if age < need:
        if not wait:
            raise RotationError(f"{what}: the previous step was {age:.1f} s ago; wait {need - age:.1f} s so every "
                                "process has seen it")
        db.session.commit()
        time.sleep(need - age)


def index_start(name: str = "phone", *, enqueue: bool = True) -> dict:
    """Phase 1 for index ``name`` (a key of :data:`ROTATABLE`): a new root key version in the free
    slot (write both) and a backfill job (none with ``enqueue=False``: run :func:`run_index_backfill`).
    Returns ``{"index", "slot", "key", "job_id"}``. Raises :class:`RotationError` for an unknown
    index or one already being rotated."""
    if name not in ROTATABLE:
        raise RotationError(f"unknown blind index {name!r}; rotatable: {', '.join(ROTATABLE)}")
    row = _state_row(name)
    free = "b" if row.read_slot == "a" else "a"
    if (row.key_b if free == "b" else row.key_a) is not None:
        raise RotationError(f"blind index {name}: a rotation is already under way (slot {free} in use); "
                            "finish it with `crm keys index switch` and `drop`")
    kid = add_index_key(Path(current_app.config["CRM_KEYS_DIR"]))
    reset_keyring()
    setattr(row, f"key_{free}", kid)
    row.changed_at = utcnow()
    row.backfill_slot, row.backfill_cursor, row.backfill_done = free, None, 0
    row.backfill_started_at = row.backfill_finished_at = None
    row.backfill_total = 0
    audit.record("keys.index_start", detail=f"blind index {name}: key {kid} in slot {free}",
                 actor=audit.system_actor("keys_index"))
    db.session.commit()
    blind_index.forget_state()
    job_id = None
    if enqueue:
        job_id = jobs.enqueue(BACKFILL_JOB, name).id
    return {"index": name, "slot": free, "key": kid, "job_id": job_id}


def run_index_backfill(name: str = "phone", *, batch: int = 500, wait: bool = True,
                       max_batches: int | None = None) -> dict:
    """Recompute the backfill slot of index ``name`` for every citizen not erased, in id order from
    the stored cursor, ``batch`` citizens at a time; each batch is committed with the progress. The
    value is ``ROTATABLE[name].normalised`` of the decrypted citizen (NULL for a citizen whose data key
    is gone), written only where the source ciphertext columns are unchanged since the read.
    ``wait=False`` raises :class:`RotationError` instead of sleeping when ``start`` was under
    ``2 × CRM_BIDX_STATE_TTL_S`` ago; ``max_batches`` stops early (tests of resumption).
    Returns ``{"done", "total", "finished"}``."""
    row = _state_row(name)
    slot = row.backfill_slot
    if slot is None:
        raise RotationError(f"blind index {name}: no rotation under way (`crm keys index start`)")
    if row.backfill_finished_at is not None:
        return {"done": row.backfill_done, "total": row.backfill_total, "finished": True}
    _wait_since(row, "backfill", wait)  # every writer fills both slots before we scan
    row = _state_row(name)
    key = getattr(row, f"key_{slot}")
    column = blind_index.SLOTS[name][0 if slot == "a" else 1]
    source = ROTATABLE[name]
    model = source.model or registry.subject_table().model
    if row.backfill_started_at is None:
        row.backfill_started_at = utcnow()
        row.backfill_total = db.session.execute(sa.select(sa.func.count()).select_from(model)
                                                .where(model.erased_at.is_(None))).scalar_one()
    db.session.commit()
    batches = 0
    while True:
        cursor = _state_row(name).backfill_cursor
        q = sa.select(model).where(model.erased_at.is_(None))
        if cursor:
            q = q.where(model.id > cursor)
        rows = db.session.execute(q.order_by(model.id).limit(batch)).scalars().all()
        if not rows:
            break
        crypto.prefetch_keys([c.id for c in rows])
        params = []
        for c in rows:
            try:
                value = source.normalised(c)
            except KeyErased:
                value = None
            p = {"b_id": c.id, "b_val": blind_index.compute(name, value, key) if value else None}
            for i, enc_col in enumerate(source.ciphertext):
                p[f"b_enc{i}"] = getattr(c, enc_col)
            params.append(p)
        last = rows[-1].id
        db.session.expunge_all()
        t = model.__table__
        # "AND <ciphertext> IS NOT DISTINCT FROM the one we read" for every source column: a citizen
        # whose name/phone/address changed meanwhile keeps the value its writer computed (writers
        # fill both slots during the rotation); NULL (no address) compares equal to NULL
        unchanged = [t.c[enc_col].is_not_distinct_from(sa.bindparam(f"b_enc{i}", type_=t.c[enc_col].type))
                     for i, enc_col in enumerate(source.ciphertext)]
        db.session.execute(sa.update(t).where(t.c.id == sa.bindparam("b_id"), *unchanged)
                           .values({column: sa.bindparam("b_val")}), params)
        st = _state_row(name)
        st.backfill_cursor = last
        st.backfill_done = (st.backfill_done or 0) + len(params)
        db.session.commit()
        batches += 1
        if max_batches is not None and batches >= max_batches:
            st = _state_row(name)
            return {"done": st.backfill_done, "total": st.backfill_total, "finished": False}
    st = _state_row(name)
    st.backfill_finished_at = utcnow()
    audit.record("keys.index_backfill", detail=f"blind index {name}: slot {slot} filled for {st.backfill_done} citizens",
                 actor=audit.system_actor("keys_index"))
    db.session.commit()
    return {"done": st.backfill_done, "total": st.backfill_total, "finished": True}


def index_switch(name: str = "phone", *, wait: bool = True) -> str:
    """Phase 2: lookups of index ``name`` read the new slot. Raises :class:`RotationError` before the
    backfill has finished (or, with ``wait=False``, within ``2 × CRM_BIDX_STATE_TTL_S`` of the
    previous step). Returns the slot now read (``"a"``/``"b"``)."""
    row = _state_row(name)
    if row.backfill_slot is None or row.backfill_finished_at is None:
        raise RotationError(f"blind index {name}: the backfill has not finished (`crm keys status`)")
    if row.read_slot == row.backfill_slot:
        return row.read_slot
    _wait_since(row, "switch", wait)
    row = _state_row(name)
    row.read_slot = row.backfill_slot
    row.changed_at = utcnow()
    audit.record("keys.index_switch", detail=f"blind index {name}: lookups read slot {row.read_slot}",
                 actor=audit.system_actor("keys_index"))
    db.session.commit()
    blind_index.forget_state()
    return row.read_slot


def index_drop(name: str = "phone", *, wait: bool = True, batch: int = 2000) -> str:
    """Phase 3: stop writing the old slot of index ``name``, clear its column (bulk UPDATE … SET
    col = NULL) and forget its key version. Returns the retired root key version (its file may be
    removed once no other index uses it). Raises :class:`RotationError` before ``switch`` (or, with
    ``wait=False``, within ``2 × CRM_BIDX_STATE_TTL_S`` of it).

    ``building`` only: before the old column is cleared, every appeal whose ``building_key`` equals
    its citizen's old-slot value gets the citizen's new-slot value (``batch`` appeals per
    transaction), so repeat detection and statistics by building keep matching them. Appeals of
    erased citizens (both slots already NULL: the address is gone, nothing to recompute from) and
    appeals made at an earlier address of their citizen keep the value under the retired key: the
    de-identified statistic survives, but no longer groups with the building's newer appeals.
    The copies are those declared with :func:`crm.security.registry.register_index_copy`."""
    source = ROTATABLE.get(name)
    indexed = (source.model if source is not None else None) or registry.subject_table().model
    row = _state_row(name)
    if row.backfill_slot is None or row.read_slot != row.backfill_slot:
        raise RotationError(f"blind index {name}: switch reads to the new column first (`crm keys index switch`)")
    _wait_since(row, "drop", wait)
    row = _state_row(name)
    old = "a" if row.read_slot == "b" else "b"
    old_key = getattr(row, f"key_{old}")
    setattr(row, f"key_{old}", None)
    row.changed_at = utcnow()
    row.backfill_slot = None
    db.session.commit()
    blind_index.forget_state()
    _wait_since(_state_row(name), "clear", True)  # no process writes the old column any more
    column = blind_index.SLOTS[name][0 if old == "a" else 1]
    detail = f"blind index {name}: slot {old} (key {old_key}) cleared"
    for copy in [c for c in registry.INDEX_COPIES.values() if c.index == name]:
        n = _rekey_copies(copy, indexed, column, blind_index.SLOTS[name][0 if old == "b" else 1], batch)
        detail += f"; {n} {copy.model.__tablename__} re-keyed"
    db.session.execute(sa.update(indexed.__table__).values({column: None}))
    audit.record("keys.index_drop", detail=detail, actor=audit.system_actor("keys_index"))
    db.session.commit()
    return old_key


def _rekey_copies(copy: IndexCopy, indexed: type, old_col: str, new_col: str, batch: int) -> int:
    """Set ``copy.column`` (e.g. ``appeals.building_key``) to its citizen's ``new_col`` value where it
    equals the citizen's ``old_col`` value, ``batch`` rows per committed transaction. Returns how many
    were changed."""
    a, c = copy.model.__table__, indexed.__table__
    target, fk = a.c[copy.column], a.c[copy.citizen_column]
    cond = sa.exists().where(c.c.id == fk, c.c[old_col] == target,
                             c.c[new_col].isnot(None), c.c[new_col] != c.c[old_col])
    new_value = sa.select(c.c[new_col]).where(c.c.id == fk).scalar_subquery()
    done = 0
    while True:
        ids = db.session.execute(sa.select(a.c.id).where(cond).limit(batch)).scalars().all()
        if not ids:
            return done
        done += db.session.execute(sa.update(a).where(a.c.id.in_(ids), cond).values({copy.column: new_value})).rowcount
        db.session.commit()


def index_status() -> list[dict]:
    """States of every rotatable index for ``crm keys status``: ``[{"index", "key_a", "key_b",
    "read_slot", "backfill": None | {"slot", "done", "total", "started_at", "finished_at"}}]``
    (key versions ``i<N>`` or None; no state row yet: slot a under ``i1``, read from slot a)."""
    out = []
    for name in ROTATABLE:
        row = db.session.get(BlindIndexState, name)
        if row is None:
            out.append({"index": name, "key_a": "i1", "key_b": None, "read_slot": "a", "backfill": None})
            continue
        out.append({"index": name, "key_a": row.key_a, "key_b": row.key_b, "read_slot": row.read_slot,
                    "backfill": None if row.backfill_slot is None else
                    {"slot": row.backfill_slot, "done": row.backfill_done, "total": row.backfill_total,
                     "started_at": row.backfill_started_at, "finished_at": row.backfill_finished_at}})
    return out
