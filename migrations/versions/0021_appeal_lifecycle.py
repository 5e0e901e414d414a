"""Appeal lifecycle (issue 14, point 4): who did each step, comments for the citizen, first-contact
resolution, duplicates; «консультация дана» closes the appeal

``appeal_events.user_role``: the role the user acted in (kept as it was then); ``visibility``: who may
read the row's comment, ``internal`` (staff) or ``citizen`` (also the citizen's self-service page);
``kind``: ``transition`` (a status change, with an optional comment) or ``comment`` (a comment alone,
e.g. one moved from a merged duplicate); ``moved_from_id``: the appeal a comment was moved from by a
merge. ``appeals.first_contact``: closed at the first contact (answered on the call, «консультация
дана»), the first-contact-resolution KPI; ``duplicate_of_id``: the original of a duplicate.

``nearest_deadline`` is generated again: a consultation given (``consulted``) is a closure, nothing is
pending in it any more (0019 kept the status update pending there).

Revision ID: 0021_appeal_lifecycle
Revises: 0020_dispatch_breaches
"""
import sqlalchemy as sa
from alembic import op


revision = "0021_appeal_lifecycle"
down_revision = "0020_dispatch_breaches"
branch_labels = None
depends_on = None

PG_FAR = "TIMESTAMPTZ '9999-01-01 00:00:00+00'"
SQLITE_FAR = "'9999-01-01 00:00:00.000000'"


def expression(far: str, least: str, *, consulted_pending: bool = False) -> str:
    """The nearest pending deadline by status (crm.appeals.catalog.PENDING_DEADLINES, frozen here)."""
    def c(col):
        return f"coalesce({col}, {far})"

    def low(*cols):
        return f"{least}({', '.join(c(x) for x in cols)})" if len(cols) > 1 else c(cols[0])
    consulted = f" WHEN 'consulted' THEN {low('update_by')}" if consulted_pending else ""
    return (f"CASE status"
            f" WHEN 'received' THEN CASE WHEN category = 'consultation' THEN {low('update_by', 'resolve_by')}"
            f" ELSE {low('escalate_by', 'update_by', 'resolve_by')} END"
            f"{consulted}"
            f" WHEN 'escalated' THEN {low('update_by', 'resolve_by')}"
            f" WHEN 'in_progress' THEN {low('update_by', 'resolve_by')}"
            f" WHEN 'resolved' THEN {low('update_by')}"
            f" ELSE {far} END")


def _nearest_deadline(consulted_pending: bool) -> None:
    op.execute("DROP INDEX ix_appeals_nearest_deadline")
    op.execute("ALTER TABLE appeals DROP COLUMN nearest_deadline")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE appeals ADD COLUMN nearest_deadline TIMESTAMP WITH TIME ZONE GENERATED ALWAYS AS "
                   f"({expression(PG_FAR, 'least', consulted_pending=consulted_pending)}) STORED")
    else:
        op.execute("ALTER TABLE appeals ADD COLUMN nearest_deadline DATETIME GENERATED ALWAYS AS "
                   f"({expression(SQLITE_FAR, 'min', consulted_pending=consulted_pending)}) VIRTUAL")
    op.execute("CREATE INDEX ix_appeals_nearest_deadline ON appeals (nearest_deadline, id)")


def upgrade():
    with op.batch_alter_table("appeal_events") as batch:
        batch.add_column(sa.Column("user_role", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("visibility", sa.String(length=10), nullable=False, server_default="internal"))
        batch.add_column(sa.Column("kind", sa.String(length=12), nullable=False, server_default="transition"))
        batch.add_column(sa.Column("moved_from_id", sa.String(length=36), nullable=True))
        batch.create_check_constraint("visibility", "visibility IN ('internal', 'citizen')")
        batch.create_check_constraint("kind", "kind IN ('transition', 'comment')")
    # appeals has a generated column (0019): plain ALTER TABLE ADD COLUMN, no batch copy of the table
    pg = op.get_bind().dialect.name == "postgresql"
    op.add_column("appeals", sa.Column("first_contact", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("appeals", sa.Column("duplicate_of_id", sa.String(length=36), nullable=True))
    if pg:  # SQLite cannot add a foreign key to an existing table without copying it
        op.create_foreign_key(op.f("fk_appeals_duplicate_of_id_appeals"), "appeals", "appeals",
                              ["duplicate_of_id"], ["id"])
    op.create_index(op.f("ix_appeals_duplicate_of_id"), "appeals", ["duplicate_of_id"], unique=False)
    # appeals already answered on the call: first-contact resolutions (never escalated, never re-opened)
    op.execute("UPDATE appeals SET first_contact = true WHERE status IN ('consulted', 'closed') "
               "AND escalated_at IS NULL AND reopen_count = 0 AND EXISTS (SELECT 1 FROM appeal_events e "
               "WHERE e.appeal_id = appeals.id AND e.from_status = 'received' AND e.to_status = 'consulted')")
    op.execute("UPDATE appeals SET closed_at = resolved_at WHERE status = 'consulted' AND closed_at IS NULL")
    _nearest_deadline(consulted_pending=False)


def downgrade():
    _nearest_deadline(consulted_pending=True)
    op.drop_index(op.f("ix_appeals_duplicate_of_id"), table_name="appeals")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f("fk_appeals_duplicate_of_id_appeals"), "appeals", type_="foreignkey")
    op.drop_column("appeals", "duplicate_of_id")
    op.drop_column("appeals", "first_contact")
    with op.batch_alter_table("appeal_events") as batch:
        batch.drop_constraint(batch.f("ck_appeal_events_kind"), type_="check")
        batch.drop_constraint(batch.f("ck_appeal_events_visibility"), type_="check")
        batch.drop_column("moved_from_id")
        batch.drop_column("kind")
        batch.drop_column("visibility")
        batch.drop_column("user_role")
