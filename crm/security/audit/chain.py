"""The hash chain: the canonical encoding of an entry, and chaining the queued entries at commit.

See the package docstring (:mod:`crm.security.audit`) for the design: the ``audit_head`` row lock,
the one pipelined message on PostgreSQL (``crm_audit_append``), early lock release and the
durability barrier. Importing this module registers the SQLAlchemy session hooks that do the work.
"""
from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timezone
from json.encoder import encode_basestring as _json_str  # the C encoder json.dumps(ensure_ascii=False) uses

from flask import current_app, has_app_context
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from crm.db import db
from crm.security.models import AccessLogEntry, AuditHead

# The chaining message goes to the driver directly (pipeline mode); it is logged where SQLAlchemy
# logs its own statements, so an SQL log (echo) still shows every write.
_sql_log = logging.getLogger("sqlalchemy.engine.Engine")

GENESIS = "0" * 64
_PENDING = "crm_audit_pending"
_BARRIER = "crm_audit_barrier"
_COMMITTED = "crm_audit_committed"  # PostgreSQL: the chaining message committed the transaction
_CHUNK = 500  # entries per chaining call on PostgreSQL (a long list page is split)


# --- canonical encoding ------------------------------------------------------------------------------

ENTRY_FIELDS = ("seq", "at", "actor_id", "actor", "actor_role", "action", "citizen_id", "fields", "purpose",
                "appeal_id", "call_id", "ip", "user_agent", "outcome", "detail", "prev_hash")
#: The hashed fields in the canonical (sorted) key order; :func:`verify` selects columns in this order.
SORTED_FIELDS = tuple(sorted(ENTRY_FIELDS))
_TEMPLATE = "{" + ",".join(f'"{k}":%s' for k in SORTED_FIELDS) + "}"
_FIELD_SET = frozenset(ENTRY_FIELDS)


def _enc(value) -> str:
    """One value exactly as ``json.dumps(..., ensure_ascii=False)`` writes it (datetimes as ISO 8601)."""
    cls = value.__class__
    if cls is str:
        return _json_str(value)
    if value is None:
        return "null"
    if cls is int:
        return int.__repr__(value)
    if isinstance(value, datetime):
        return _json_str(value.isoformat(timespec="microseconds"))
    return json.dumps(value, ensure_ascii=False)


def canonical(entry: dict) -> bytes:
    """Canonical encoding hashed for the chain: ``json.dumps(fields but hash, sort_keys=True,
    separators=(",", ":"), ensure_ascii=False)`` in UTF-8, ``at`` as ISO 8601 with microseconds.

    The common case (exactly the entry fields) is formatted from a precomputed template, byte for
    byte the same as ``json.dumps`` (tests/security/test_audit_canonical.py)."""
    if entry.keys() - {"hash"} == _FIELD_SET:
        return (_TEMPLATE % tuple([_enc(entry[k]) for k in SORTED_FIELDS])).encode("utf-8")
    data = {k: v for k, v in entry.items() if k != "hash"}
    if data.get("at") is not None and not isinstance(data["at"], str):
        data["at"] = data["at"].isoformat(timespec="microseconds")
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(entry: dict) -> str:
    """SHA-256 hex of :func:`canonical`."""
    return hashlib.sha256(canonical(entry)).hexdigest()


def entry_dict(row: AccessLogEntry) -> dict:
    """The hashed fields of an ORM row, as a dict (``hash`` not included)."""
    return {k: getattr(row, k) for k in ENTRY_FIELDS}


# --- chaining at commit ------------------------------------------------------------------------------

def _early_release() -> bool:
    return bool(current_app.config["CRM_AUDIT_EARLY_LOCK_RELEASE"]) if has_app_context() else False


_COLUMNS = ENTRY_FIELDS + ("hash",)
_INSERT_COLS = ", ".join(_COLUMNS)


def _sqlite_time(at: datetime) -> str:
    """``at`` as SQLAlchemy stores a DateTime in SQLite (naive UTC, always microseconds), so ORM
    reads and the raw statements here agree."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


_PREV_AT = SORTED_FIELDS.index("prev_hash")
_SEQ_AT = SORTED_FIELDS.index("seq")
assert _PREV_AT < _SEQ_AT  # the split below relies on the sorted order: … prev_hash … seq …
_SEP = "\x1e"  # between the parts sent to crm_audit_append: canonical JSON never holds it raw
_PG_FIELDS = tuple(k for k in SORTED_FIELDS if k not in ("prev_hash", "seq"))


def _pg_template() -> str:
    items = [f'"{k}":%s' if k not in ("prev_hash", "seq") else None for k in SORTED_FIELDS]
    before, between, after = items[:_PREV_AT], items[_PREV_AT + 1:_SEQ_AT], items[_SEQ_AT + 1:]
    pre = "{" + "".join(f"{x}," for x in before) + '"prev_hash":'
    mid = "," + "".join(f"{x}," for x in between) + '"seq":'
    suf = "".join(f",{x}" for x in after) + "}"
    return pre + _SEP + mid + _SEP + suf


_PG_TEMPLATE = _pg_template()
_PG_APPEND = "SELECT crm_audit_append(%s, %s)"


def pg_entry(entry: dict) -> str:
    """The canonical encoding of ``entry`` without ``seq`` and ``prev_hash`` (only the chain knows
    them): ``pre``, ``mid`` and ``suf`` joined by U+001E, such that ``canonical(entry) ==
    (pre + '"' + prev_hash + '"' + mid + str(seq) + suf).encode()``. PostgreSQL's
    ``crm_audit_append`` fills in the two values under the chain lock
    (migrations/versions/0009_audit_append_function.py); a hex hash and an integer need no JSON
    escaping, and JSON escapes every control character, so U+001E only ever separates parts.
    tests/security/test_audit_canonical.py checks the identity."""
    return _PG_TEMPLATE % tuple([_enc(entry[k]) for k in _PG_FIELDS])


def pg_parts(entry: dict) -> tuple[str, str, str]:
    """:func:`pg_entry` as the tuple ``(pre, mid, suf)``."""
    pre, mid, suf = pg_entry(entry).split(_SEP)
    return pre, mid, suf


_SQLITE_LOCK = "UPDATE audit_head SET seq = seq + ? WHERE id = 1 RETURNING seq, hash"
_SQLITE_INSERT = f"INSERT INTO access_log ({_INSERT_COLS}) VALUES ({', '.join(['?'] * len(_COLUMNS))})"
_SQLITE_HEAD = "UPDATE audit_head SET hash = ? WHERE id = 1"


def _chain_pending(session: Session) -> None:
    """Number, hash and insert the queued entries. Plain driver SQL, prepared once: this runs under
    the chain lock, where every microsecond is paid by every other writer."""
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    # The action's own INSERTs/UPDATEs go first, before the chain lock is taken.
    session.flush()
    more = session.info.pop(_PENDING, None)  # entries recorded by flush-time hooks, if any
    if more:
        pending.extend(more)
    conn = session.connection(bind_arguments={"mapper": AccessLogEntry})
    if conn.dialect.name == "postgresql":
        _chain_pg(session, conn, pending)
        return
    n = len(pending)
    # SQLite: this transaction already holds the database's write lock (BEGIN IMMEDIATE).
    row = conn.exec_driver_sql(_SQLITE_LOCK, (n,)).first()
    if row is None:
        raise RuntimeError("access log chain head missing (run `crm db upgrade`)")
    seq, prev = row[0] - n, row[1]
    sha = hashlib.sha256
    rows = []
    for entry in pending:
        seq += 1
        entry["seq"] = seq
        entry["prev_hash"] = prev
        prev = sha(canonical(entry)).hexdigest()
        entry["hash"] = prev
        values = [entry[k] for k in _COLUMNS]
        values[1] = _sqlite_time(values[1])
        rows.append(values)
    conn.exec_driver_sql(_SQLITE_INSERT, [tuple(r) for r in rows])
    conn.exec_driver_sql(_SQLITE_HEAD, (prev,))


def _chain_pg(session: Session, conn, pending: list[dict]) -> None:
    """PostgreSQL: everything but the two chain values is encoded here, outside the lock; then
    one pipelined message (psycopg pipeline mode) locks the head, chains, inserts and — when the
    session has nothing left to flush — commits, so the head-row lock is never held while the
    server waits for the application. SQLAlchemy's own COMMIT that follows finds the transaction
    closed and sends nothing (psycopg skips COMMIT when idle). If anything would still be flushed
    after us (a ``before_commit`` hook registered later), the COMMIT is left to SQLAlchemy."""
    import psycopg

    early = _early_release()
    commit = not (session.new or session.dirty or session.deleted)
    if early and not commit:  # synchronous_commit off for this transaction only (set by crm_audit_append)
        session.info[_BARRIER] = conn  # the barrier runs after SQLAlchemy's COMMIT
    raw = conn.connection.dbapi_connection
    # Nothing sent yet in this transaction (an action that only logs): psycopg would send BEGIN
    # and wait for its reply before anything else; send it ourselves, inside the one message.
    own_begin = commit and raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    if own_begin:
        raw.autocommit = True  # so psycopg adds no BEGIN of its own (restored below; no round trip)
    try:
        for i in range(0, len(pending), _CHUNK):
            chunk = pending[i:i + _CHUNK]
            first, last = i == 0, i + _CHUNK >= len(pending)
            params = (_SEP.join([pg_entry(e) for e in chunk]), early)
            if _sql_log.isEnabledFor(logging.INFO):
                _sql_log.info("%s%s%s %r", "BEGIN; " if own_begin and first else "", _PG_APPEND,
                              "; COMMIT" if commit and last else "", params)
            # The statement (and BEGIN, COMMIT) leave in one message, answered by one reply at the
            # pipeline's Sync. COMMIT goes as a statement: ``raw.commit()`` would Sync (a round
            # trip) on its own, and leaving the pipeline would Sync once more.
            with raw.pipeline():
                with raw.cursor() as cur:
                    if own_begin and first:
                        cur.execute("BEGIN")
                    cur.execute(_PG_APPEND, params)
                    if commit and last:
                        cur.execute("COMMIT")
                        if early:
                            queue_barrier(raw)
            if commit and last:
                session.info[_COMMITTED] = True
    except psycopg.errors.UndefinedFunction as err:
        raise RuntimeError("access log chain function missing (run `crm db upgrade`)") from err
    except psycopg.errors.RaiseException as err:  # e.g. the chain head is missing
        raise RuntimeError(err.diag.message_primary or str(err)) from err
    finally:
        if own_begin:
            if raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                raw.rollback()  # failed inside our BEGIN; SQLAlchemy's rollback then finds it idle
            raw.autocommit = False


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    # a released savepoint fires before_commit too: chain only at the outermost commit, so the
    # head-row lock is never taken mid-transaction (it deadlocked with row inserts on PostgreSQL)
    if session.in_nested_transaction():
        return
    if session.info.get(_PENDING):
        _chain_pending(session)


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _flush_context, _instances) -> None:
    """Nothing may be written after the chaining message committed the transaction: it would go
    to a transaction of its own, outside the one the access log vouches for. Only a
    ``before_commit`` hook registered after ours could do that; fail loudly instead."""
    if session.info.get(_COMMITTED):
        raise RuntimeError("the session changed after its access-log entries were committed "
                           "(a before_commit hook that writes must run before crm.security.audit's)")


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    conn = session.info.pop(_BARRIER, None)
    if conn is not None:
        durability_barrier(conn)


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction) -> None:
    """Entries belong to the session's outermost transaction: when it ends without chaining them
    (rolled back, or the session closed), they are dropped, so a refused or failed action leaves no
    entry. :func:`record` begins that transaction if none is open, so this holds even when no SQL
    was sent; a savepoint ending (the outer transaction goes on) keeps them. On commit this runs
    after ``after_commit``, i.e. after the durability barrier."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_BARRIER, None)
        session.info.pop(_COMMITTED, None)


def queue_barrier(raw) -> None:
    """:func:`durability_barrier` inside a psycopg pipeline, right after the COMMIT (which released
    the chain lock without waiting for the disk): a statement in an implicit transaction of its
    own, ended by the pipeline's Sync under the server's ``synchronous_commit``, so the reply to
    the whole message comes once the WAL is flushed past our commit record. No extra round trip."""
    with raw.cursor() as cur:
        cur.execute("SELECT txid_current()")


def durability_barrier(bind=None) -> None:
    """Return once everything this process committed so far is on disk (PostgreSQL).

    A tiny transaction that gets a transaction id commits with the server's ``synchronous_commit``;
    its commit flushes the WAL up to its own commit record and so every earlier one. Concurrent
    barriers share a flush. ``bind``: the just-committed session connection (reused on the DBAPI
    level: SQLAlchemy calls ``after_commit`` before returning it to the pool), or an engine
    (default ``db.engine``). A no-op on SQLite, whose commits are synchronous."""
    bind = bind if bind is not None else db.engine
    if bind.dialect.name != "postgresql":
        return
    if hasattr(bind, "connection") and not bind.closed:
        raw = bind.connection.dbapi_connection
        if raw is not None and not bind.in_transaction():
            raw.autocommit = True  # one round trip: the statement is its own transaction
            try:
                raw.execute("SELECT txid_current()")
            finally:
                raw.autocommit = False
            return
    engine = bind.engine if hasattr(bind, "engine") else bind
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT txid_current()")
        conn.commit()


def head(session: Session | None = None) -> tuple[int, str]:
    """``(seq, hash)`` of the chain head as committed (0 and 64 zeros for an empty log)."""
    session = session or db.session
    row = session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).first()
    return (row[0], row[1]) if row else (0, GENESIS)
