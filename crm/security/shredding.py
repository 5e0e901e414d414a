"""Crypto-shredding: erase a citizen's personal data everywhere, backups included.

:func:`erase_citizen` (a plain service function; a later issue adds four-eyes approval on top):

1. **main database, one transaction**: every ciphertext column of the citizen's rows is set to
   NULL (citizen card, appeal descriptions, history comments, call file names, transcripts and
   word timings, QA comments), plaintext derived from them is emptied (the automatic QA checks'
   sentences about the transcript), every blind index of the citizen and every copy of one (the
   building key of the citizen's appeals) is cleared, ``citizens.erased_at``
   is set, a :class:`~crm.security.models.DestructionRecord` is written (whose data, which
   categories, reason, method, when, by whom) and the access log gets ``citizen.erase``.
   De-identified statistical columns stay, so KPIs still add up: appeal category, topic, channel,
   dates, statuses, SLA clocks, re-opens; call durations and statuses; QA scores and check outcomes.
2. **files** of the citizen (the recordings of the citizen's calls) are deleted from disk, and
   the registry's sweepers delete plaintext that no one citizen can be told from (copies a killed
   process of an earlier version left in ``recordings/incoming``).
3. **key store**: the citizen's data key is deleted (with a tombstone so none is ever made again).
   From then on every copy of the ciphertext — the main database's backups, dumps, replicas — is
   unreadable. The key store's own backups are kept at most 30 days (152-ФЗ ст. 21 ч. 5), so the
   key leaves them within the legal window.
4. the destruction record gets ``key_destroyed_at``.

The order matters: were the key deleted first and step 1 then failed, the citizen would look alive
but be unreadable. Should step 3 fail after step 1, the citizen is already erased in the application
and :func:`complete_pending` (or erasing again) finishes the job; ``crm keys status`` lists such
records. Running :func:`erase_citizen` twice is safe.

What belongs to a citizen comes from the personal-data registry (:mod:`crm.security.registry`), which
each feature fills for its own tables; the application refuses to start when a model has an encrypted
column the registry does not declare.
"""
from __future__ import annotations

import json

import sqlalchemy as sa

from crm.db import db, new_id, utcnow
from crm.i18n import lazy_gettext as _l
from crm.security import audit, crypto, keystore, registry
from crm.security.fields import encrypted_columns, models_with_encrypted_fields
from crm.security.models import DestructionRecord

METHOD = ("crypto-shredding: AES-256-GCM data key deleted from the key store (its backups expire within "
          "30 days); ciphertext columns, blind indexes and their copies set to NULL and derived texts emptied in "
          "the main database; recording files deleted; de-identified statistics kept")


class ErasureError(ValueError):
    """Erasure refused (unknown citizen, no reason); Russian message."""


def _owned():
    """``[(model, where)]``: rows whose ciphertext belongs to the citizen, from the personal-data
    registry (:mod:`crm.security.registry`); ``where(citizen_id, owners)`` is the WHERE clause
    (``owners``: the citizen id and the ids of the citizen's other key owners, such as calls whose
    data keys encrypt a transcript made before the call was linked to the citizen)."""
    return [(t.model, t.rows_of) for t in registry.tables()]


def _owners(citizen_id: str) -> list[str]:
    return registry.key_owners(citizen_id)


def _actor(actor) -> audit.Actor:
    if actor is None:
        return audit.current_actor()
    if isinstance(actor, audit.Actor):
        return actor
    return audit.Actor(getattr(actor, "id", None), getattr(actor, "username", str(actor)),
                       getattr(actor, "role", "unknown"))


def erase_citizen(citizen_id: str, reason: str, actor=None) -> DestructionRecord:
    """Crypto-shred citizen ``citizen_id`` (see module docstring) and return the destruction record.

    ``reason``: why (e.g. "consent withdrawn, 152-ФЗ ст. 9 ч. 2; request of 2026-05-01"), stored
    in the record, never in the access log. ``actor``: a user (``id``, ``username``, ``role``) or
    :class:`crm.security.audit.Actor`; default the signed-in user. Raises :class:`ErasureError`."""
    reason = (reason or "").strip()
    if not reason:
        raise ErasureError(_l("укажите основание уничтожения данных"))
    subject = registry.subject_table()
    citizen = db.session.get(subject.model, citizen_id)
    if citizen is None:
        raise ErasureError(_l("заявитель %(citizen_id)s не найден", citizen_id=citizen_id))
    who = _actor(actor)
    existing = db.session.execute(db.select(DestructionRecord).where(
        DestructionRecord.citizen_id == citizen_id, DestructionRecord.scope == "citizen")
        .order_by(DestructionRecord.at.desc()).limit(1)).scalar_one_or_none()
    if citizen.erased_at is not None and existing is not None:
        complete_pending(existing)
        return existing

    # 1. main database, one transaction
    categories: set[str] = set()
    counts: dict[str, int] = {}
    for col in subject.encrypted:
        if getattr(citizen, col) is not None:
            categories.add(col.removesuffix("_enc"))
    files = {category: entry.paths(citizen_id) for category, entry in registry.FILES.items()}
    db.session.expunge(citizen)
    owners = _owners(citizen_id)
    for entry in registry.tables():
        table, cols = entry.model.__table__, entry.encrypted
        cond = entry.rows_of(citizen_id, owners)
        if not entry.subject and cols:
            n = db.session.execute(sa.select(sa.func.count()).select_from(table).where(
                cond, sa.or_(*[table.c[c].isnot(None) for c in cols]))).scalar_one()
            if n:
                counts[table.name] = n
                categories.add(entry.category)
        values = {c: None for c in cols}
        for c in entry.cleared:
            values[c] = None if table.c[c].nullable else ""
        if entry.cleared:
            n = db.session.execute(sa.select(sa.func.count()).select_from(table).where(
                cond, sa.or_(*[_filled(table.c[c]) for c in entry.cleared]))).scalar_one()
            if n:
                counts[table.name] = counts.get(table.name, 0) + n
                categories.add(entry.category)
        if entry.subject:
            values.update({c: None for c in entry.blind_indexes})
            values["erased_at"] = utcnow()
        if values:
            db.session.execute(sa.update(table).where(cond).values(values))
    for copy in registry.INDEX_COPIES.values():  # e.g. appeals.building_key: the citizen's building, keyed
        table = copy.model.__table__
        db.session.execute(sa.update(table).where(table.c[copy.citizen_column] == citizen_id)
                           .values({copy.column: None}))
    for category, paths in files.items():
        if paths:
            categories.add(category)
            counts[category] = len(paths)
    record = DestructionRecord(id=new_id(), citizen_id=citizen_id, scope="citizen",
                               categories=",".join(sorted(categories)), reason=reason[:5000],
                               method=METHOD, detail=json.dumps(counts, sort_keys=True), at=utcnow(),
                               actor_id=who.id, actor=who.name[:80], actor_role=who.role[:20])
    db.session.add(record)
    audit.record("citizen.erase", citizen_id=citizen_id, fields=sorted(categories), outcome="ok",
                 detail=f"destruction record {record.id}", actor=who)
    db.session.commit()
    db.session.expire_all()

    # 2. files (call recordings)
    for paths in files.values():
        for path in paths:
            path.unlink(missing_ok=True)
    for sweep in registry.SWEEPERS.values():
        sweep()

    # 3.–4. key store, then the record
    complete_pending(record)
    return record


def complete_pending(record: DestructionRecord | None = None) -> int:
    """Delete the data key of ``record`` (or of every record of a whole citizen, ``scope``
    ``citizen``, still without ``key_destroyed_at``) and stamp the record. Returns how many were
    completed. A record of some recordings only (``scope`` ``recordings``) never deletes the
    citizen's key."""
    records = [record] if record is not None else list(db.session.execute(
        db.select(DestructionRecord).where(DestructionRecord.key_destroyed_at.is_(None),
                                           DestructionRecord.scope == "citizen")).scalars())
    done = 0
    for rec in records:
        if rec.key_destroyed_at is not None or rec.scope != "citizen":
            continue
        for owner in _owners(rec.citizen_id):
            keystore.delete_owner(owner)
            crypto.forget_cached_key(owner_id=owner)
        rec.key_destroyed_at = utcnow()
        db.session.commit()
        done += 1
    return done


def pending() -> list[DestructionRecord]:
    """Destruction records whose data key is not yet deleted (step 3 failed)."""
    return list(db.session.execute(db.select(DestructionRecord).where(
        DestructionRecord.key_destroyed_at.is_(None), DestructionRecord.scope == "citizen")).scalars())


def known_owners(owner_ids: list[str]) -> set[str]:
    """Which of ``owner_ids`` exist in the main database (citizens, or calls that own their key)."""
    return registry.known_owners(owner_ids)


__all__ = ["ErasureError", "METHOD", "erase_citizen", "complete_pending", "pending", "known_owners",
           "encrypted_columns", "models_with_encrypted_fields"]


def _filled(column):
    """``column`` holds something to clear: not NULL, and for text not the empty string."""
    if isinstance(column.type, sa.String):
        return sa.and_(column.isnot(None), column != "")
    return column.isnot(None)
