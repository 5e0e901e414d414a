"""appeals.nearest_deadline: the nearest pending SLA deadline, a generated column, indexed with the id

What :func:`crm.appeals.services.next_deadline` computes in Python, computed by the database from the
appeal's own columns, so the appeal lists (nearest deadline first, keyset paging, the overdue filter)
read an index instead of sorting every appeal. ``9999-01-01`` when nothing is pending (closed,
rejected, duplicate). Pending deadlines by status (crm.appeals.catalog.PENDING_DEADLINES, frozen
here; a test compares the two): received → escalate (not for consultations), update, resolve;
consulted, resolved → update; escalated, in_progress → update, resolve. PostgreSQL: STORED; SQLite:
VIRTUAL (SQLite cannot add a stored column), both indexed.

Revision ID: 0019_appeal_nearest_deadline
Revises: 0018_appeal_clock_warnings, 0018_recording_destruction
"""
from alembic import op


revision = "0019_appeal_nearest_deadline"
# also the merge point of the two revisions made on 0017 in parallel (clock warnings, recording destruction)
down_revision = ("0018_appeal_clock_warnings", "0018_recording_destruction")
branch_labels = None
depends_on = None

PG_FAR = "TIMESTAMPTZ '9999-01-01 00:00:00+00'"
SQLITE_FAR = "'9999-01-01 00:00:00.000000'"


def expression(far: str, least: str) -> str:
    def c(col):
        return f"coalesce({col}, {far})"

    def low(*cols):
        return f"{least}({', '.join(c(x) for x in cols)})" if len(cols) > 1 else c(cols[0])
    return (f"CASE status"
            f" WHEN 'received' THEN CASE WHEN category = 'consultation' THEN {low('update_by', 'resolve_by')}"
            f" ELSE {low('escalate_by', 'update_by', 'resolve_by')} END"
            f" WHEN 'consulted' THEN {low('update_by')}"
            f" WHEN 'escalated' THEN {low('update_by', 'resolve_by')}"
            f" WHEN 'in_progress' THEN {low('update_by', 'resolve_by')}"
            f" WHEN 'resolved' THEN {low('update_by')}"
            f" ELSE {far} END")


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE appeals ADD COLUMN nearest_deadline TIMESTAMP WITH TIME ZONE "
                   f"GENERATED ALWAYS AS ({expression(PG_FAR, 'least')}) STORED")
    else:
        op.execute("ALTER TABLE appeals ADD COLUMN nearest_deadline DATETIME "
                   f"GENERATED ALWAYS AS ({expression(SQLITE_FAR, 'min')}) VIRTUAL")
    op.execute("CREATE INDEX ix_appeals_nearest_deadline ON appeals (nearest_deadline, id)")


def downgrade():
    op.execute("DROP INDEX ix_appeals_nearest_deadline")
    op.execute("ALTER TABLE appeals DROP COLUMN nearest_deadline")
