"""dispatch: the supervisors' breach queue and staff notifications (issue 14, point 5)

``breaches``: one row per appeal, clock and cycle whose clock ran out (unique), with when it ran out
(``breached_at``), when it was queued (``escalated_at``) and who acknowledged it when.
``notifications``: in-app notifications to every supervisor or to one executor's accounts
(``audience``, ``executor_id``), of a ``kind`` with ``params`` (JSON), idempotent on ``key``, with
who read it first. No personal data in either; both removed with their appeal.

Revision ID: 0020_dispatch_breaches
Revises: 0019_appeal_nearest_deadline
"""
import sqlalchemy as sa
from alembic import op

revision = "0020_dispatch_breaches"
down_revision = "0019_appeal_nearest_deadline"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "breaches",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("appeal_id", sa.String(length=36), nullable=False),
        sa.Column("clock", sa.String(length=40), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("breached_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_by", sa.Integer(), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["appeal_id"], ["appeals.id"], ondelete="CASCADE",
                                name=op.f("fk_breaches_appeal_id_appeals")),
        sa.ForeignKeyConstraint(["acknowledged_by"], ["users.id"], name=op.f("fk_breaches_acknowledged_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_breaches")),
        sa.UniqueConstraint("appeal_id", "clock", "cycle", name=op.f("uq_breaches_appeal_id")),
    )
    with op.batch_alter_table("breaches") as batch:
        batch.create_index(batch.f("ix_breaches_appeal_id"), ["appeal_id"], unique=False)
        batch.create_index(batch.f("ix_breaches_acknowledged_at"), ["acknowledged_at"], unique=False)
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("audience", sa.String(length=20), nullable=False),
        sa.Column("executor_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("appeal_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("read_by", sa.Integer(), nullable=True),
        sa.CheckConstraint("audience IN ('supervisor', 'executor')", name=op.f("ck_notifications_audience")),
        sa.CheckConstraint("audience = 'supervisor' OR executor_id IS NOT NULL", name=op.f("ck_notifications_executor")),
        sa.ForeignKeyConstraint(["executor_id"], ["executors.id"], name=op.f("fk_notifications_executor_id_executors")),
        sa.ForeignKeyConstraint(["appeal_id"], ["appeals.id"], ondelete="CASCADE",
                                name=op.f("fk_notifications_appeal_id_appeals")),
        sa.ForeignKeyConstraint(["read_by"], ["users.id"], name=op.f("fk_notifications_read_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("key", name=op.f("uq_notifications_key")),
    )
    with op.batch_alter_table("notifications") as batch:
        for column in ("audience", "executor_id", "appeal_id", "created_at"):
            batch.create_index(batch.f(f"ix_notifications_{column}"), [column], unique=False)


def downgrade():
    op.drop_table("notifications")
    op.drop_table("breaches")
