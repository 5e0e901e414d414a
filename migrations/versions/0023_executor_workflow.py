"""the executor's workflow: more kinds of appeal_events and extension_requests (issue 14, point 3)

``appeal_events.kind`` (``transition`` or ``comment`` since 0021) takes the executor's rows too, which
keep the status: ``note`` (a progress report), ``extension_request``, ``extension`` (an approved
extension: resolve_by moved), ``extension_rejected``; the column widens to 20 characters. ``extension_requests``: an executor's request
for a later resolution deadline (``until``), ``pending`` until a supervisor approves or rejects it;
its reason and the decision's words are the appeal's history rows (encrypted there), so the table
holds no personal data.

Revision ID: 0023_executor_workflow
Revises: 0022_executor_buildings
"""
import sqlalchemy as sa
from alembic import op

revision = "0023_executor_workflow"
down_revision = "0022_executor_buildings"
branch_labels = None
depends_on = None


KINDS = ("transition", "comment", "note", "extension_request", "extension", "extension_rejected")


def upgrade():
    with op.batch_alter_table("appeal_events") as batch:
        batch.drop_constraint("kind", type_="check")
        batch.alter_column("kind", existing_type=sa.String(length=12), type_=sa.String(length=20),
                           existing_nullable=False, existing_server_default="transition")
        batch.create_check_constraint("kind", "kind IN (%s)" % ", ".join(f"'{k}'" for k in KINDS))
    op.create_table(
        "extension_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("appeal_id", sa.String(length=36), nullable=False),
        sa.Column("executor_id", sa.Integer(), nullable=True),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("previous_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("request_event_id", sa.String(length=36), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_event_id", sa.String(length=36), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name=op.f("ck_extension_requests_status")),
        sa.ForeignKeyConstraint(["appeal_id"], ["appeals.id"], ondelete="CASCADE",
                                name=op.f("fk_extension_requests_appeal_id_appeals")),
        sa.ForeignKeyConstraint(["executor_id"], ["executors.id"], name=op.f("fk_extension_requests_executor_id_executors")),
        sa.ForeignKeyConstraint(["requested_by"], ["users.id"], name=op.f("fk_extension_requests_requested_by_users")),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"], name=op.f("fk_extension_requests_decided_by_users")),
        sa.ForeignKeyConstraint(["request_event_id"], ["appeal_events.id"], ondelete="SET NULL",
                                name=op.f("fk_extension_requests_request_event_id_appeal_events")),
        sa.ForeignKeyConstraint(["decision_event_id"], ["appeal_events.id"], ondelete="SET NULL",
                                name=op.f("fk_extension_requests_decision_event_id_appeal_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_extension_requests")),
    )
    with op.batch_alter_table("extension_requests") as batch:
        batch.create_index(batch.f("ix_extension_requests_appeal_id"), ["appeal_id"], unique=False)
        batch.create_index(batch.f("ix_extension_requests_status"), ["status"], unique=False)


def downgrade():
    op.drop_table("extension_requests")
    op.execute("DELETE FROM appeal_events WHERE kind NOT IN ('transition', 'comment')")
    with op.batch_alter_table("appeal_events") as batch:
        batch.drop_constraint("kind", type_="check")
        batch.alter_column("kind", existing_type=sa.String(length=20), type_=sa.String(length=12),
                           existing_nullable=False, existing_server_default="transition")
        batch.create_check_constraint("kind", "kind IN ('transition', 'comment')")
