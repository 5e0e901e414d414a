"""transcripts and evaluation texts re-encrypted under the call's own data key (issue 13)

Before this revision the segments of a transcript (``segments.text_enc``, ``words_enc``) and the
free texts of evaluations that quote the call (``evaluations.comment_enc``, ``notes_enc``,
``dispute_reason_enc``, ``resolution_enc``) were encrypted under the citizen's data key
(``owner_id`` = the citizen). Destroying a recording after a QA-consent withdrawal deletes the
call's own key only, so a backup of the main database taken before still opened them with the
citizen's key, which lives on. From now on they are sealed under the call's own key (``owner_id`` =
the call's id, ``crm.calls.models.Call.speech_owner_id``), the one destruction deletes.

This data migration moves the existing rows: each ciphertext is decrypted in memory and encrypted
again under the call's key for the same place (``crm.security.crypto.reseal_field``; the call's
key is made when a recording stored before 0018 has none yet, and ``rekey_recording`` later uses
the same one), and ``owner_id`` becomes the call's id, in batches, in the migration's transaction.

* Idempotent: only rows whose ``owner_id`` is not their call's id are read, so a second run (or a
  run after an interrupted one) finds nothing left to do.
* Rows of a call whose recording was already destroyed have no business existing (the destruction
  deletes the segments and clears the evaluation texts): segments are deleted, texts set to NULL.
* A ciphertext that does not open (its key already crypto-shredded, or tampered with) leaves its row
  as it is and is counted in the log line; the application reports it (``security.decrypt_failed``)
  when the row is read. Nothing is written to the access log from here (its chaining commits on
  PostgreSQL and would end the migration's transaction).
* Safe on PostgreSQL and SQLite: plain SQL on the migration's connection; the data keys live in the
  key store, a database of its own (``CRM_KEYSTORE_URL``; on SQLite ``instance/keystore.sqlite3``),
  whose new keys are committed there before the rows that use them, as everywhere.

Copies of these rows in main-database backups made *before* this migration stay under the
citizen's key (as copies of recordings made before ``crm rekey-recordings`` do): they become
unreadable when the citizen is erased, or disappear as those backups age out.

Downgrade: nothing to undo. Every row names the owner of its key in ``owner_id``, which the
previous version reads as well, so the re-encrypted rows stay readable by it.

Revision ID: 0027_speech_under_call_key
Revises: 0026_selfservice_grant_indexes
"""
import logging

import sqlalchemy as sa
from alembic import op

revision = "0027_speech_under_call_key"
down_revision = "0026_selfservice_grant_indexes"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
BATCH = 500

_calls = sa.table("calls", sa.column("id", sa.String), sa.column("recording_destroyed_at", sa.DateTime))
#: table → (table object, {ciphertext column: the encrypted attribute's name, bound in the associated data})
TABLES = {
    "segments": (sa.table("segments", sa.column("id", sa.String), sa.column("call_id", sa.String),
                          sa.column("owner_id", sa.String), sa.column("text_enc", sa.LargeBinary),
                          sa.column("words_enc", sa.LargeBinary)),
                 {"text_enc": "text", "words_enc": "words"}),
    "evaluations": (sa.table("evaluations", sa.column("id", sa.String), sa.column("call_id", sa.String),
                             sa.column("owner_id", sa.String), sa.column("comment_enc", sa.LargeBinary),
                             sa.column("notes_enc", sa.LargeBinary), sa.column("dispute_reason_enc", sa.LargeBinary),
                             sa.column("resolution_enc", sa.LargeBinary)),
                    {"comment_enc": "comment", "notes_enc": "notes", "dispute_reason_enc": "dispute_reason",
                     "resolution_enc": "resolution"}),
}


def rekey_rows(conn, *, batch: int = BATCH) -> dict:
    """Re-encrypt every segment and evaluation text not yet under its call's own data key (see the
    module docstring) through ``conn``. Returns ``{table: {"rekeyed", "emptied", "left"}}``."""
    from crm.security import crypto

    counts = {}
    for name, (table, columns) in TABLES.items():
        n = counts[name] = {"rekeyed": 0, "emptied": 0, "left": 0}
        last = ""
        while True:
            rows = conn.execute(
                sa.select(table.c.id, table.c.call_id, table.c.owner_id, _calls.c.recording_destroyed_at,
                          *[table.c[c] for c in columns])
                .select_from(table.join(_calls, _calls.c.id == table.c.call_id))
                .where(table.c.owner_id != table.c.call_id, table.c.id > last)
                .order_by(table.c.id).limit(batch)).mappings().all()
            if not rows:
                break
            last = rows[-1]["id"]
            for row in rows:
                mine = sa.and_(table.c.id == row["id"], table.c.owner_id == row["owner_id"])
                if row["recording_destroyed_at"] is not None:  # destroyed: the texts go, as destruction does
                    if name == "segments":
                        conn.execute(sa.delete(table).where(mine))
                    else:
                        conn.execute(sa.update(table).where(mine).values(
                            {c: None for c in columns} | {"owner_id": row["call_id"]}))
                    n["emptied"] += 1
                    continue
                values = {"owner_id": row["call_id"]}
                try:
                    for col, attr in columns.items():
                        if row[col] is not None:
                            values[col] = crypto.reseal_field(bytes(row[col]), table=name, column=attr,
                                                              row_id=row["id"], from_owner=row["owner_id"],
                                                              to_owner=row["call_id"])
                except crypto.DecryptError:  # (KeyErased too) the row stays whole under its old owner
                    n["left"] += 1
                    continue
                conn.execute(sa.update(table).where(mine).values(values))
                n["rekeyed"] += 1
    return counts


def upgrade():
    counts = rekey_rows(op.get_bind())
    for name, n in counts.items():
        log.info("%s: %d rows re-encrypted under their call's own data key, %d of destroyed recordings emptied, "
                 "%d left (they do not decrypt: key erased or tampered with)", name, n["rekeyed"], n["emptied"],
                 n["left"])


def downgrade():
    pass
