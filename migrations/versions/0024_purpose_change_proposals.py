"""consent: changes to the register of purposes that need a second DPO (two-person rule)

``purpose_change_proposals``: one row per proposed change (today: switching a purpose's
``requires_consent`` off), who proposed it and when, ``status`` (``pending``, ``approved``,
``rejected``), who decided and when. No personal data.

Revision ID: 0024_purpose_change_proposals
Revises: 0023_executor_workflow
"""
import sqlalchemy as sa
from alembic import op

revision = "0024_purpose_change_proposals"
down_revision = "0023_executor_workflow"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "purpose_change_proposals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("purpose_code", sa.String(length=40), nullable=False),
        sa.Column("field", sa.String(length=40), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("proposed_by", sa.Integer(), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["purpose_code"], ["purposes.code"],
                                name=op.f("fk_purpose_change_proposals_purpose_code_purposes")),
        sa.ForeignKeyConstraint(["proposed_by"], ["users.id"],
                                name=op.f("fk_purpose_change_proposals_proposed_by_users")),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"],
                                name=op.f("fk_purpose_change_proposals_decided_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purpose_change_proposals")),
    )
    with op.batch_alter_table("purpose_change_proposals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_purpose_change_proposals_purpose_code"), ["purpose_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_purpose_change_proposals_status"), ["status"], unique=False)


def downgrade():
    with op.batch_alter_table("purpose_change_proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_purpose_change_proposals_status"))
        batch_op.drop_index(batch_op.f("ix_purpose_change_proposals_purpose_code"))
    op.drop_table("purpose_change_proposals")
