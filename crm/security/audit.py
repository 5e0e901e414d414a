"""The access log: append-only, hash-chained, written in the same transaction as the action.

Services call :func:`record`; entries are queued on the session and chained just before the commit
(SQLAlchemy ``before_commit``): the chain head row is updated first, which takes a row lock on
PostgreSQL and the write lock on SQLite, so concurrent writers from any number of processes append
one after another. If the entry cannot be written, the commit (and so the action) fails.

Each entry's hash is SHA-256 over the canonical JSON (sorted keys, no spaces, UTF-8) of all its
fields but ``hash``, including ``prev_hash``. The first entry's ``prev_hash`` is 64 zeros.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Iterable

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy import event, update
from sqlalchemy.orm import Session

from crm.db import db, utcnow
from crm.security.models import AccessLogEntry, AuditHead

GENESIS = "0" * 64
_PENDING = "crm_audit_pending"


@dataclass
class Actor:
    id: int | None
    name: str
    role: str


def system_actor(job: str) -> Actor:
    """The actor for a background job or CLI command."""
    return Actor(None, f"job:{job}", "system")


def current_actor() -> Actor:
    """The signed-in user of this request, or an anonymous actor."""
    try:
        if current_user and current_user.is_authenticated:
            return Actor(current_user.id, current_user.username, current_user.role)
    except Exception:  # outside a request
        pass
    return Actor(None, "anonymous", "none")


def record(action: str, *, citizen_id: str | None = None, fields: Iterable[str] = (), purpose: str | None = None,
           appeal_id: str | None = None, call_id: str | None = None, outcome: str = "ok",
           detail: str | None = None, actor: Actor | None = None, session: Session | None = None) -> None:
    """Queue an access-log entry on the session; it is chained and written at commit.

    ``fields`` are field categories (``full_name``, ``phone`` …), never values."""
    session = session or db.session
    actor = actor or current_actor()
    ip = ua = None
    if has_request_context():
        ip = request.headers.get("X-Forwarded-For", request.remote_addr or "")[:64].split(",")[0].strip() or None
        ua = (request.user_agent.string or "")[:200] or None
    entry = dict(at=utcnow(), actor_id=actor.id, actor=actor.name, actor_role=actor.role, action=action,
                 citizen_id=citizen_id, fields=",".join(sorted(set(fields))), purpose=purpose,
                 appeal_id=appeal_id, call_id=call_id, ip=ip, user_agent=ua, outcome=outcome, detail=detail)
    session.info.setdefault(_PENDING, []).append(entry)


def canonical(entry: dict) -> bytes:
    """Canonical encoding hashed for the chain."""
    data = {k: v for k, v in entry.items() if k != "hash"}
    if data.get("at") is not None and not isinstance(data["at"], str):
        data["at"] = data["at"].isoformat(timespec="microseconds")
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(entry: dict) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


ENTRY_FIELDS = ("seq", "at", "actor_id", "actor", "actor_role", "action", "citizen_id", "fields", "purpose",
                "appeal_id", "call_id", "ip", "user_agent", "outcome", "detail", "prev_hash")


def entry_dict(row: AccessLogEntry) -> dict:
    return {k: getattr(row, k) for k in ENTRY_FIELDS}


def _flush_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    bind = session.connection()
    n = len(pending)
    res = bind.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + n)
                       .returning(AuditHead.seq, AuditHead.hash))
    row = res.first()
    if row is None:
        raise RuntimeError("access log chain head missing (run `crm db upgrade`)")
    last_seq, prev = row[0], row[1]
    seq = last_seq - n
    for entry in pending:
        seq += 1
        entry["seq"] = seq
        entry["prev_hash"] = prev
        entry["at"] = entry["at"].replace(microsecond=entry["at"].microsecond)
        prev = entry_hash(entry)
        session.add(AccessLogEntry(**entry, hash=prev))
    bind.execute(update(AuditHead).where(AuditHead.id == 1).values(hash=prev))


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if session.info.get(_PENDING):
        _flush_pending(session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def verify(session: Session | None = None, batch: int = 20000) -> tuple[int, int | None, str]:
    """Walk the whole chain. Returns ``(entries checked, first bad seq or None, message)``.

    Detects edited, deleted, swapped or inserted entries, and a chain cut short of the head.
    Reads plain rows in batches of ``batch`` (no ORM objects) to keep memory flat."""
    from sqlalchemy import select

    session = session or db.session
    cols = [getattr(AccessLogEntry, k) for k in ENTRY_FIELDS] + [AccessLogEntry.hash]
    prev = GENESIS
    expected_seq = 1
    count = 0
    last = 0
    while True:
        rows = session.execute(select(*cols).where(AccessLogEntry.seq > last)
                               .order_by(AccessLogEntry.seq).limit(batch)).all()
        if not rows:
            break
        for row in rows:
            d = dict(zip(ENTRY_FIELDS, row[:-1]))
            seq, own = d["seq"], row[-1]
            if seq != expected_seq:
                return count, expected_seq, f"entry {expected_seq} is missing (next is {seq})"
            if d["prev_hash"] != prev:
                return count, seq, f"entry {seq}: previous-hash link broken"
            if entry_hash(d) != own:
                return count, seq, f"entry {seq}: contents do not match its hash"
            prev = own
            expected_seq += 1
            count += 1
            last = seq
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != count or head.hash != prev):
        return count, count + 1, f"chain ends at entry {count} but the head says {head.seq}: newest entries removed"
    return count, None, "ok"
