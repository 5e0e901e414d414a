"""Verification: walking the chain (:func:`verify`), reading rows in order, and the archive
format (:func:`export_lines`, :func:`verify_lines`) that verifies on its own.

The chain alone cannot show that its newest entries were cut off *and* the head row rewritten, or
that all of history was re-hashed: see :mod:`crm.security.checkpoints`."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from json.encoder import encode_basestring as _json_str  # the C encoder json.dumps(ensure_ascii=False) uses
from typing import Iterable, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.db import db
from crm.security.audit.chain import ENTRY_FIELDS, GENESIS, SORTED_FIELDS, _TEMPLATE, _enc, entry_hash, head
from crm.security.models import AccessLogEntry


def _row_hash(row) -> str:
    """SHA-256 of a row selected in :data:`SORTED_FIELDS` order, any value types (see :func:`_enc`)."""
    return hashlib.sha256((_TEMPLATE % tuple([_enc(v) for v in row])).encode("utf-8")).hexdigest()


# The hot loop of verification. Rows come straight from the driver in SORTED_FIELDS order with ``at``
# already as its ISO 8601 string; one expression per column, no per-row dicts or type dispatch.
assert SORTED_FIELDS == ("action", "actor", "actor_id", "actor_role", "appeal_id", "at", "call_id", "citizen_id",
                         "detail", "fields", "ip", "outcome", "prev_hash", "purpose", "seq", "user_agent")


def _raw_row_hash(r, s=_json_str, sha=hashlib.sha256) -> str:
    try:
        return sha((_TEMPLATE % (
            s(r[0]), s(r[1]), "null" if r[2] is None else int.__repr__(r[2]), s(r[3]),
            "null" if r[4] is None else s(r[4]), s(r[5]), "null" if r[6] is None else s(r[6]),
            "null" if r[7] is None else s(r[7]), "null" if r[8] is None else s(r[8]), s(r[9]),
            "null" if r[10] is None else s(r[10]), s(r[11]), s(r[12]), "null" if r[13] is None else s(r[13]),
            int.__repr__(r[14]), "null" if r[15] is None else s(r[15]))).encode("utf-8")).hexdigest()
    except TypeError:  # a NULL where the app never writes one (a tampered row): the generic path
        return _row_hash(r[:len(SORTED_FIELDS)])


_SEQ = SORTED_FIELDS.index("seq")
_PREV = SORTED_FIELDS.index("prev_hash")
_AT = SORTED_FIELDS.index("at")
_RAW_AT = {  # ``at`` as the exact string hashed: UTC, ISO 8601, microseconds, "+00:00"
    "postgresql": "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')",
    "sqlite": "at",  # SQLAlchemy stores "YYYY-MM-DD HH:MM:SS.ffffff" (UTC): converted below
}


def _pg_canonical_sql() -> str:
    """PostgreSQL expression building :func:`canonical` of a row as text. ``to_json(text)`` escapes
    exactly as Python's ``json`` does with ``ensure_ascii=False`` (``"``, ``\\``, ``\\b \\f \\n \\r \\t``,
    other control characters as lower-case ``\\u00xx``; everything else as is). The hash is still
    computed here, never by the database (tests/security/test_audit_tamper.py checks both agree)."""
    parts = []
    for i, k in enumerate(SORTED_FIELDS):
        prefix = ("{" if i == 0 else ",") + f'"{k}":'
        value = (f"'\"' || {_RAW_AT['postgresql']} || '\"'" if k == "at" else f"coalesce(to_json({k})::text, 'null')")
        parts.append(f"'{prefix}' || {value}")
    return " || ".join(parts) + " || '}'"


def _iter_pg_canonical(conn, first: int, last: int, batch: int) -> Iterator[tuple]:
    """``(seq, prev_hash, hash, canonical text)`` from PostgreSQL: 4 values a row instead of 17, so
    the driver's per-value conversion stops dominating verification."""
    sql = (f"SELECT seq, prev_hash, hash, {_pg_canonical_sql()} FROM access_log "
           f"WHERE seq > %(after)s AND seq <= %(last)s ORDER BY seq LIMIT %(batch)s")
    cursor = conn.connection.dbapi_connection.cursor()
    after = first - 1
    try:
        while True:
            cursor.execute(sql, {"after": after, "last": last, "batch": batch})
            rows = cursor.fetchall()
            if not rows:
                return
            yield from rows
            after = rows[-1][0]
    finally:
        cursor.close()


def _sqlite_at(value: str) -> str:
    if len(value) == 26 and value[10] == " ":
        return f"{value[:10]}T{value[11:]}+00:00"
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc).isoformat(timespec="microseconds")


def iter_rows(session: Session, first: int = 1, last: int | None = None, batch: int = 50000,
              raw: bool = False) -> Iterator[tuple]:
    """Rows ``(SORTED_FIELDS..., hash)`` with ``first <= seq <= last`` in order, fetched in batches
    by key range (flat memory, no ORM objects). ``raw``: plain driver tuples with ``at`` as the ISO
    string that was hashed (PostgreSQL and SQLite; elsewhere ``at`` stays a datetime)."""
    conn = session.connection(bind_arguments={"mapper": AccessLogEntry})
    dialect = conn.dialect.name
    if raw and dialect in _RAW_AT:
        cols = ", ".join(_RAW_AT[dialect] if k == "at" else k for k in SORTED_FIELDS)
        fix_at = dialect == "sqlite"
        ph = (lambda n: f":{n}") if fix_at else (lambda n: f"%({n})s")  # sqlite3 / psycopg named parameters
        sql = (f"SELECT {cols}, hash FROM access_log WHERE seq > {ph('after')} AND seq <= {ph('last')} "
               f"ORDER BY seq LIMIT {ph('batch')}")
        after, last = first - 1, last if last is not None else 2 ** 62
        cursor = conn.connection.dbapi_connection.cursor()  # plain tuples: no result-row wrapping
        while True:
            cursor.execute(sql, {"after": after, "last": last, "batch": batch})
            rows = cursor.fetchall()
            if not rows:
                cursor.close()
                return
            if fix_at:
                for r in rows:
                    r = list(r)
                    r[_AT] = _sqlite_at(r[_AT])
                    yield r
            else:
                yield from rows
            after = rows[-1][_SEQ]
    cols = [getattr(AccessLogEntry, k) for k in SORTED_FIELDS] + [AccessLogEntry.hash]
    after = first - 1
    while True:
        q = select(*cols).where(AccessLogEntry.seq > after)
        if last is not None:
            q = q.where(AccessLogEntry.seq <= last)
        rows = session.execute(q.order_by(AccessLogEntry.seq).limit(batch)).all()
        if not rows:
            return
        if raw:
            rows = [(*r[:_AT], r[_AT].isoformat(timespec="microseconds"), *r[_AT + 1:]) for r in rows]
        yield from rows
        after = rows[-1][_SEQ]


def verify(session: Session | None = None, batch: int = 50000) -> tuple[int, int | None, str]:
    """Walk the chain from entry 1 to the head. Returns ``(entries checked, first bad seq or None,
    message)``.

    Detects edited, deleted, swapped or inserted entries, and a chain cut short of the head row.
    The head is read first, so entries appended while verifying are not mistaken for damage.
    On PostgreSQL the database builds each row's canonical text (one value a row instead of 17 for
    the driver to convert); the hashes are computed here. Figures: ``bench/audit.py``."""
    session = session or db.session
    head_seq, head_hash = head(session)
    prev = GENESIS
    expected = 1
    count = 0
    conn = session.connection(bind_arguments={"mapper": AccessLogEntry})
    if conn.dialect.name == "postgresql":
        sha = hashlib.sha256
        for seq, prev_hash, own, canon in _iter_pg_canonical(conn, 1, head_seq, batch):
            if seq != expected:
                return count, expected, f"entry {expected} is missing (next is {seq})"
            if prev_hash != prev:
                return count, seq, f"entry {seq}: previous-hash link broken"
            if sha(canon.encode("utf-8")).hexdigest() != own:
                return count, seq, f"entry {seq}: contents do not match its hash"
            prev = own
            expected += 1
            count += 1
        return _head_check(count, prev, head_seq, head_hash)
    for row in iter_rows(session, 1, head_seq, batch, raw=True):
        seq, own = row[_SEQ], row[-1]
        if seq != expected:
            return count, expected, f"entry {expected} is missing (next is {seq})"
        if row[_PREV] != prev:
            return count, seq, f"entry {seq}: previous-hash link broken"
        if _raw_row_hash(row) != own:
            return count, seq, f"entry {seq}: contents do not match its hash"
        prev = own
        expected += 1
        count += 1
    return _head_check(count, prev, head_seq, head_hash)


def _head_check(count: int, prev: str, head_seq: int, head_hash: str) -> tuple[int, int | None, str]:
    if count != head_seq:
        return count, count + 1, (f"entries {count + 1}–{head_seq} are missing: the chain ends at entry {count} "
                                  f"but the head says {head_seq} (newest entries removed)")
    if prev != head_hash:
        return count, count, f"entry {count}: hash differs from the head row's"
    return count, None, "ok"


def hashes_at(seqs: Iterable[int], session: Session | None = None) -> dict[int, str]:
    """``{seq: hash}`` of the entries with these numbers that exist."""
    session = session or db.session
    seqs = sorted(set(seqs))
    out: dict[int, str] = {}
    for i in range(0, len(seqs), 1000):
        part = seqs[i:i + 1000]
        out.update((s, h) for s, h in session.execute(select(AccessLogEntry.seq, AccessLogEntry.hash)
                                                      .where(AccessLogEntry.seq.in_(part))))
    return out


# --- export for archiving ----------------------------------------------------------------------------

def seq_range(start: datetime | None, end: datetime | None, session: Session | None = None) -> tuple[int, int] | None:
    """The contiguous range ``(first, last)`` of entries from the first with ``at >= start`` to the
    last with ``at < end`` (UTC; None = open). An archive is always a contiguous run of ``seq``, so
    it verifies on its own; entries written concurrently near the edges may lie a few ms outside."""
    session = session or db.session
    q_first = select(AccessLogEntry.seq)
    q_last = select(AccessLogEntry.seq)
    if start is not None:
        q_first = q_first.where(AccessLogEntry.at >= start)
    if end is not None:
        q_last = q_last.where(AccessLogEntry.at < end)
    first = session.execute(q_first.order_by(AccessLogEntry.seq).limit(1)).scalar()
    last = session.execute(q_last.order_by(AccessLogEntry.seq.desc()).limit(1)).scalar()
    if first is None or last is None or first > last:
        return None
    return first, last


def export_lines(first: int, last: int, session: Session | None = None) -> Iterator[str]:
    """JSON lines (no newline) of entries ``first..last``: every hashed field plus ``hash``, ``at``
    as the ISO string that was hashed, keys sorted. Each line verifies alone with :func:`entry_hash`
    and links to the one before by ``prev_hash``."""
    session = session or db.session
    keys = SORTED_FIELDS + ("hash",)
    for row in iter_rows(session, first, last, raw=True):
        yield json.dumps(dict(zip(keys, row)), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def verify_lines(lines: Iterable[str]) -> tuple[int, int | None, str, dict]:
    """Check an archive made by :func:`export_lines`. Returns ``(entries, first bad seq or None,
    message, {"first", "last", "first_prev", "last_hash", "hashes": {seq: hash}})``."""
    info: dict = {"first": None, "last": None, "first_prev": None, "last_hash": None, "hashes": {}}
    prev = None
    expected = None
    count = 0
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            seq, own = data["seq"], data["hash"]
            hashed = {k: data[k] for k in ENTRY_FIELDS}
        except (ValueError, KeyError, TypeError):
            return count, expected or 0, f"line {lineno}: not an access-log entry", info
        if expected is None:
            info["first"], info["first_prev"] = seq, data["prev_hash"]
            expected, prev = seq, data["prev_hash"]
        if seq != expected:
            return count, expected, f"entry {expected} is missing (next is {seq})", info
        if data["prev_hash"] != prev:
            return count, seq, f"entry {seq}: previous-hash link broken", info
        if entry_hash(hashed) != own:
            return count, seq, f"entry {seq}: contents do not match its hash", info
        info["hashes"][seq] = own
        prev, expected = own, seq + 1
        info["last"], info["last_hash"] = seq, own
        count += 1
    return count, None, "ok", info
