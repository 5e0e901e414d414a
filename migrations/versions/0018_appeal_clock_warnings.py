"""appeals: the 50/80/100 % warnings of their clocks

``appeal_clock_warnings``: one row per appeal, clock (``code``), cycle and ``level`` (50, 80, 100 per
cent of the cycle's time used; unique), written once by the periodic scan
(``crm.appeals.services.warn_clocks``), with the time it was noticed (``at``). No personal data;
removed with its appeal.

Revision ID: 0018_appeal_clock_warnings
Revises: 0017_executors
"""
import sqlalchemy as sa
from alembic import op

revision = "0018_appeal_clock_warnings"
down_revision = "0017_executors"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "appeal_clock_warnings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("appeal_id", sa.String(length=36), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["appeal_id"], ["appeals.id"], ondelete="CASCADE",
                                name=op.f("fk_appeal_clock_warnings_appeal_id_appeals")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appeal_clock_warnings")),
        sa.UniqueConstraint("appeal_id", "code", "cycle", "level", name=op.f("uq_appeal_clock_warnings_appeal_id")),
    )
    with op.batch_alter_table("appeal_clock_warnings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_appeal_clock_warnings_appeal_id"), ["appeal_id"], unique=False)


def downgrade():
    with op.batch_alter_table("appeal_clock_warnings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_appeal_clock_warnings_appeal_id"))
    op.drop_table("appeal_clock_warnings")
