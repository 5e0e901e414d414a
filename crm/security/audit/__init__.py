"""The access log: append-only, hash-chained, written in the same transaction as the action.

Services call :func:`record`; entries are queued on the session and chained just before the commit
(SQLAlchemy ``before_commit``). If the entry cannot be written, the commit (and so the action) fails.

**Chaining.** Each entry's hash is SHA-256 over its canonical encoding (:func:`canonical`: JSON with
sorted keys, no spaces, UTF-8, ``at`` as ISO 8601 with microseconds) of all its fields but ``hash``,
including ``prev_hash``; the first entry's ``prev_hash`` is 64 zeros. The single ``audit_head`` row
(``seq``, ``hash``) serialises appenders from any number of processes: ``UPDATE audit_head ...
RETURNING`` takes its row lock on PostgreSQL (SQLite: every transaction already holds the write lock
from ``BEGIN IMMEDIATE``, see :mod:`crm.db`), the entries are numbered and hashed from the head, then
inserted together with the new head hash. The next appender waits on the row lock until this
transaction ends, so the chain is strictly linear: no gaps, no forks, order = ``seq``.

**Keeping the lock short.** The lock is taken as late as possible: the action's own rows are flushed
first, outside the lock. On SQLite the chaining is then two plain driver statements under the
write lock the transaction already holds. On PostgreSQL everything but ``seq`` and ``prev_hash`` is
encoded in Python outside the lock (:func:`pg_entry`: the canonical JSON split around those two
values, sent as one text parameter), and one pipelined message (psycopg pipeline mode) carries
BEGIN if nothing was sent yet, the chaining call — ``crm_audit_append`` locks the head, numbers
and hashes the entries *on the server* with the very same canonical encoding, fills each row from
the document it hashed, inserts them and moves the head — and the COMMIT: one round trip, and the
lock is never held while the server waits for the application; verification is unchanged. With
8 writers on 2 cores the application's own CPU per append was the limit, hence one parameter
instead of a dozen typed values per entry.

**Early lock release.** A PostgreSQL lock is released only when the commit record is on disk, so
appenders would still queue behind one WAL fsync each. With ``CRM_AUDIT_EARLY_LOCK_RELEASE``
(default on; PostgreSQL only) the chaining transaction alone commits with ``synchronous_commit``
off (``set_config(..., true)`` inside ``crm_audit_append``) — its locks are released as soon as the
commit record is in the WAL buffer — and a durability barrier (:func:`queue_barrier` in the same
message, or :func:`durability_barrier` after SQLAlchemy's COMMIT) then waits, outside any lock,
until the WAL is flushed past that commit, *before* ``session.commit()`` returns. This is early
lock release (DeWitt et al., "Implementation techniques for main memory database systems", SIGMOD
1984; Johnson et al., "Aether: a scalable approach to logging", VLDB 2010): a transaction that
chained onto ours commits later in the same WAL, so a crash can only lose a suffix of the chain
together with the actions it records, never a link in the middle, and no caller is told "done"
(no page rendered, no job enqueued, no checkpoint published) before its action and entry are
durable. The barriers of many writers share one fsync (group commit). The price: for the
milliseconds until the flush, another session may *see* rows of a transaction that a crash would
still lose; a read of personal data is itself logged and passes a barrier after ours, so it cannot
be answered before what it read is durable. If the barrier fails (the connection drops right after
COMMIT) ``commit()`` raises although the transaction may survive, as with any lost COMMIT
acknowledgement. Set the key to ``False`` to hold the lock through the fsync: appenders then
commit strictly one after another, one fsync each (slower with several writers even on a disk
with 0.1 ms fsyncs: compare the columns of ``bench/audit.py``). The server's
``synchronous_commit`` is a deployment setting and is not changed; if a deployment turns it off,
the barrier waits for nothing and a crash may lose the last fraction of a second of actions
together with their entries (never one without the other).
Measured figures, beside plain inserts on the same machine: ``bench/audit.py``.

**Verification.** :func:`verify` walks the chain up to the head; ``crm audit verify`` exits
non-zero naming the first bad entry. The chain alone cannot show that its newest entries were cut
off *and* the head row rewritten, or that all of history was re-hashed: see
:mod:`crm.security.checkpoints` for the signed checkpoints kept outside the database.

**Modules.** :mod:`~crm.security.audit.catalogue` (the action codes and the Russian labels of
actions, fields, outcomes, roles and actors), :mod:`~crm.security.audit.recorder` (:class:`Actor`,
:func:`record`), :mod:`~crm.security.audit.chain` (the canonical encoding, chaining at commit, the
durability barrier, the head) and :mod:`~crm.security.audit.verification` (:func:`verify`, reading
rows in order, the archive format). This package re-exports their public names, so
``from crm.security import audit`` and ``audit.record(...)`` keep working.
"""
from __future__ import annotations

from crm.db import utcnow  # noqa: F401  (re-exported: tests build entries with audit.utcnow())
from crm.security.audit.catalogue import (  # noqa: F401
    ACTION_LABELS, AUTH_ACTIONS, CHANGE_ACTIONS, EXTRA_ROLE_LABELS, FIELD_LABELS, OUTCOME_LABELS, READ_ACTIONS,
    REPORT_PURPOSE, SECURITY_ACTIONS, SYSTEM_ACTOR_LABELS, DETAIL_PHRASES, action_label, actor_label, detail_label,
    entry_fields, entry_labels, outcome_label, role_label)
from crm.security.audit.chain import (  # noqa: F401
    ENTRY_FIELDS, GENESIS, SORTED_FIELDS, _PENDING, canonical, durability_barrier, entry_dict, entry_hash, head,
    pg_entry, pg_parts, queue_barrier)
from crm.security.audit.recorder import (  # noqa: F401
    Actor, acting_as, current_actor, record, request_origin, system_actor)
from crm.security.audit.verification import (  # noqa: F401
    _iter_pg_canonical, _row_hash, export_lines, hashes_at, iter_rows, seq_range, verify, verify_lines)

__all__ = [
    "ACTION_LABELS", "AUTH_ACTIONS", "CHANGE_ACTIONS", "EXTRA_ROLE_LABELS", "FIELD_LABELS", "OUTCOME_LABELS",
    "READ_ACTIONS", "REPORT_PURPOSE", "SECURITY_ACTIONS", "SYSTEM_ACTOR_LABELS", "DETAIL_PHRASES", "action_label", "actor_label", "detail_label",
    "entry_fields", "entry_labels", "outcome_label", "role_label",
    "ENTRY_FIELDS", "GENESIS", "SORTED_FIELDS", "canonical", "durability_barrier", "entry_dict", "entry_hash", "head",
    "pg_entry", "pg_parts", "queue_barrier",
    "Actor", "acting_as", "current_actor", "record", "request_origin", "system_actor",
    "export_lines", "hashes_at", "iter_rows", "seq_range", "verify", "verify_lines",
]
