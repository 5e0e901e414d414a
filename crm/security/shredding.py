"""Crypto-shredding: erase a citizen's personal data everywhere, backups included.

:func:`erase_citizen` (a plain service function; a later issue adds four-eyes approval on top):

1. **main database, one transaction**: every ciphertext column of the citizen's rows is set to
   NULL (citizen card, appeal descriptions, history comments, call file names, transcripts and
   word timings, QA comments), every blind index of the citizen is cleared, ``citizens.erased_at``
   is set, a :class:`~crm.security.models.DestructionRecord` is written (whose data, which
   categories, reason, method, when, by whom) and the access log gets ``citizen.erase``.
   De-identified statistical columns stay, so KPIs still add up: appeal category, topic, channel,
   building key, dates, statuses, SLA clocks, re-opens; call durations and statuses; QA scores.
2. **recording files** of the citizen's calls are deleted from disk.
3. **key store**: the citizen's data key is deleted (with a tombstone so none is ever made again).
   From then on every copy of the ciphertext — the main database's backups, dumps, replicas — is
   unreadable. The key store's own backups are kept at most 30 days (152-ФЗ ст. 21 ч. 5), so the
   key leaves them within the legal window.
4. the destruction record gets ``key_destroyed_at``.

The order matters: were the key deleted first and step 1 then failed, the citizen would look alive
but be unreadable. Should step 3 fail after step 1, the citizen is already erased in the application
and :func:`complete_pending` (or erasing again) finishes the job; ``crm keys status`` lists such
records. Running :func:`erase_citizen` twice is safe.

Every model with encrypted attributes must be listed in :data:`OWNED`; a test checks it.
"""
from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from crm.db import db, new_id, utcnow
from crm.security import audit, crypto, keystore
from crm.security.models import DestructionRecord

METHOD = ("crypto-shredding: AES-256-GCM data key deleted from the key store (its backups expire within "
          "30 days); ciphertext columns and blind indexes set to NULL in the main database; recording files "
          "deleted; de-identified statistics kept")


class ErasureError(ValueError):
    """Erasure refused (unknown citizen, no reason); Russian message."""


CATEGORY_OF = {"appeals": "appeal_text", "appeal_events": "appeal_comments", "calls": "call_file_names",
               "segments": "transcripts", "evaluations": "qa_comments"}


def _owned():
    """``[(model, where)]``: rows whose ciphertext belongs to the citizen; ``where(citizen_id, owners)``
    is the WHERE clause (``owners``: the citizen id and the ids of the citizen's calls, whose data
    keys encrypt a call's transcript when it was made before the call was linked to the citizen)."""
    from crm.appeals.models import Appeal, AppealEvent
    from crm.calls.models import Call, Segment
    from crm.citizens.models import Citizen
    from crm.qa.models import Evaluation

    return [
        (Citizen, lambda cid, owners: Citizen.id == cid),
        (Appeal, lambda cid, owners: Appeal.citizen_id == cid),
        (AppealEvent, lambda cid, owners: AppealEvent.citizen_id == cid),
        (Call, lambda cid, owners: Call.citizen_id == cid),
        (Segment, lambda cid, owners: Segment.owner_id.in_(owners)),
        (Evaluation, lambda cid, owners: Evaluation.owner_id.in_(owners)),
    ]


def _owners(citizen_id: str) -> list[str]:
    from crm.calls.models import Call

    return [citizen_id] + list(db.session.execute(db.select(Call.id).where(Call.citizen_id == citizen_id)).scalars())


def encrypted_columns(model) -> list[str]:
    """The ciphertext columns of ``model`` (those behind :class:`~crm.security.fields.Encrypted`)."""
    from crm.security.fields import Encrypted

    return sorted({v.column for k, v in vars(model).items() if isinstance(v, Encrypted)})


def models_with_encrypted_fields() -> list[type]:
    """Every mapped class that has an encrypted attribute."""
    from crm.security.fields import Encrypted

    out = []
    for mapper in db.Model.registry.mappers:
        cls = mapper.class_
        if any(isinstance(v, Encrypted) for v in vars(cls).values()):
            out.append(cls)
    return out


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
    from crm.calls.models import Call
    from crm.citizens.models import Citizen

    reason = (reason or "").strip()
    if not reason:
        raise ErasureError("укажите основание уничтожения данных")
    citizen = db.session.get(Citizen, citizen_id)
    if citizen is None:
        raise ErasureError(f"заявитель {citizen_id} не найден")
    who = _actor(actor)
    existing = db.session.execute(db.select(DestructionRecord).where(DestructionRecord.citizen_id == citizen_id)
                                  .order_by(DestructionRecord.at.desc()).limit(1)).scalar_one_or_none()
    if citizen.erased_at is not None and existing is not None:
        complete_pending(existing)
        return existing

    # 1. main database, one transaction
    categories: set[str] = set()
    counts: dict[str, int] = {}
    for f in Citizen.PERSONAL_FIELDS:
        if getattr(citizen, f"{f}_enc") is not None:
            categories.add(f)
    calls = db.session.execute(db.select(Call.id, Call.storage_key).where(Call.citizen_id == citizen_id)).all()
    db.session.expunge(citizen)
    owners = _owners(citizen_id)
    for model, where in _owned():
        cols = encrypted_columns(model)
        cond = where(citizen_id, owners)
        if model is not Citizen and cols:
            n = db.session.execute(sa.select(sa.func.count()).select_from(model.__table__).where(
                cond, sa.or_(*[model.__table__.c[c].isnot(None) for c in cols]))).scalar_one()
            if n:
                counts[model.__tablename__] = n
                categories.add(CATEGORY_OF.get(model.__tablename__, model.__tablename__))
        values = {c: None for c in cols}
        if model is Citizen:
            values.update({c: None for c in Citizen.BLIND_INDEX_COLUMNS})
            values["erased_at"] = utcnow()
        db.session.execute(sa.update(model.__table__).where(cond).values(values))
    if calls:
        categories.add("recordings")
        counts["recordings"] = len(calls)
    record = DestructionRecord(id=new_id(), citizen_id=citizen_id, categories=",".join(sorted(categories)), reason=reason[:5000],
                               method=METHOD, detail=json.dumps(counts, sort_keys=True), at=utcnow(),
                               actor_id=who.id, actor=who.name[:80], actor_role=who.role[:20])
    db.session.add(record)
    audit.record("citizen.erase", citizen_id=citizen_id, fields=sorted(categories), outcome="ok",
                 detail=f"destruction record {record.id}", actor=who)
    db.session.commit()
    db.session.expire_all()

    # 2. recording files
    rec_dir = Path(current_app.config["CRM_RECORDINGS_DIR"])
    for _call_id, storage_key in calls:
        (rec_dir / f"{storage_key}.rec").unlink(missing_ok=True)

    # 3.–4. key store, then the record
    complete_pending(record)
    return record


def complete_pending(record: DestructionRecord | None = None) -> int:
    """Delete the data key of ``record`` (or of every record still without ``key_destroyed_at``)
    and stamp the record. Returns how many were completed."""
    records = [record] if record is not None else list(db.session.execute(
        db.select(DestructionRecord).where(DestructionRecord.key_destroyed_at.is_(None))).scalars())
    done = 0
    for rec in records:
        if rec.key_destroyed_at is not None:
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
    return list(db.session.execute(db.select(DestructionRecord)
                                   .where(DestructionRecord.key_destroyed_at.is_(None))).scalars())


def known_owners(owner_ids: list[str]) -> set[str]:
    """Which of ``owner_ids`` exist in the main database (citizens, or calls that own their key)."""
    from crm.calls.models import Call
    from crm.citizens.models import Citizen

    found = set(db.session.execute(db.select(Citizen.id).where(Citizen.id.in_(owner_ids))).scalars())
    found |= set(db.session.execute(db.select(Call.id).where(Call.id.in_(owner_ids))).scalars())
    return found
