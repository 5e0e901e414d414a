"""Tables of the security package: the key store (wrapped data keys, KEK records, rotations), blind-index
state, destruction records, the access log and its chain head."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import UTCDateTime, UUIDStr, db, new_id, utcnow


class DataKey(db.Model):
    """One data-encryption key (DEK) per owner (a citizen, or a call with no citizen), wrapped by a KEK.

    Lives in the **key store** (bind ``keystore``), a database separate from the main one with its
    own backup policy: deleting the row crypto-shreds every ciphertext made under it, in the main
    database and in all of its backups (see :mod:`crm.security.keystore`)."""

    __bind_key__ = "keystore"
    __tablename__ = "data_keys"
    id: Mapped[str] = mapped_column(UUIDStr, primary_key=True, default=new_id)
    owner_id: Mapped[str] = mapped_column(UUIDStr, unique=True)
    kek_id: Mapped[str] = mapped_column(String(32), index=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class KekRecord(db.Model):
    """A KEK known to the key store: its id and key check value (never the key), so a wrong or
    swapped key file is named at start-up instead of failing data key by data key."""

    __bind_key__ = "keystore"
    __tablename__ = "keks"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    check_value: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ErasedOwner(db.Model):
    """Tombstone of a crypto-shredded owner (id only): no new data key is ever made for it."""

    __bind_key__ = "keystore"
    __tablename__ = "erased_owners"
    owner_id: Mapped[str] = mapped_column(UUIDStr, primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class KeyRotation(db.Model):
    """Progress of one KEK rotation (re-wrapping every data key under ``target_kek_id``).

    ``done`` and ``cursor`` (last data key id handled by the first pass) are committed with each
    batch, so a killed job resumes where it stopped. ``finished_at`` is set when a pass finds no
    data key left under another KEK."""

    __bind_key__ = "keystore"
    __tablename__ = "key_rotations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_kek_id: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    cursor: Mapped[str | None] = mapped_column(UUIDStr)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    job_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)


class BlindIndexState(db.Model):
    """Which blind-index key version fills which column of an index, and which column reads use.

    An index has two slots, columns of ``citizens`` (``a`` = ``<name>_bidx``, ``b`` = ``<name>_bidx_b``;
    ``building``: ``building_key``/``building_key_b``; :data:`crm.security.blind_index.SLOTS`). Writes fill every
    slot that has a key version; lookups read ``read_slot``. Rotation: give the free slot a new
    version (write both), backfill it, switch reads, then clear the old slot (``crm keys index``).
    No row means: slot ``a`` under ``i1``, reads from ``a``."""

    __tablename__ = "blind_index_state"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    key_a: Mapped[str | None] = mapped_column(String(16))
    key_b: Mapped[str | None] = mapped_column(String(16))
    read_slot: Mapped[str] = mapped_column(String(1), default="a")
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    backfill_slot: Mapped[str | None] = mapped_column(String(1))
    backfill_total: Mapped[int] = mapped_column(Integer, default=0)
    backfill_done: Mapped[int] = mapped_column(Integer, default=0)
    backfill_cursor: Mapped[str | None] = mapped_column(UUIDStr)
    backfill_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    backfill_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DestructionRecord(db.Model):
    """Proof that a citizen's personal data were destroyed (152-ФЗ ст. 21): whose (citizen id),
    which categories, why, how, when and by whom. Holds no personal values and outlives the data.
    ``key_destroyed_at`` is set once the data key is gone from the key store (for ``scope``
    ``recordings``: the recordings' own keys)."""

    __tablename__ = "destruction_records"
    id: Mapped[str] = mapped_column(UUIDStr, primary_key=True, default=new_id)
    citizen_id: Mapped[str] = mapped_column(UUIDStr, index=True)
    categories: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)  # JSON counts: appeals, calls, recordings …
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(80))
    actor_role: Mapped[str] = mapped_column(String(20))
    key_destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: ``citizen``: everything of the citizen (the data key goes); ``recordings``: the recordings and
    #: transcripts of some of the citizen's calls (their own keys go; ``detail`` names the calls).
    scope: Mapped[str] = mapped_column(String(20), default="citizen", server_default="citizen")


class AuditHead(db.Model):
    """The single row holding the access log's chain head; updating it serialises appends."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64))


class AccessLogEntry(db.Model):
    """An append-only, hash-chained access-log entry. Holds ids, never personal values."""

    __tablename__ = "access_log"
    __table_args__ = (Index("ix_access_log_actor_id_at", "actor_id", "at"),)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer, index=True)
    actor: Mapped[str] = mapped_column(String(80))  # username, or "job:<name>"
    actor_role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(40), index=True)
    citizen_id: Mapped[str | None] = mapped_column(UUIDStr, index=True)
    fields: Mapped[str] = mapped_column(String(200), default="")
    purpose: Mapped[str | None] = mapped_column(String(40), index=True)
    appeal_id: Mapped[str | None] = mapped_column(UUIDStr)
    call_id: Mapped[str | None] = mapped_column(UUIDStr)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(20), default="ok")
    detail: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
