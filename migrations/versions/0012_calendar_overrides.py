"""clocks: the administrators' calendar overrides

``calendar_overrides``: one row per local day that the ``holidays`` package's Russian calendar gets
wrong for this hotline (``crm.clocks.services``): ``day`` (DATE, key), ``kind`` (``holiday``,
``working`` or ``shortened``), ``hours`` (a shortened day's length; NULL: one hour less, ТК РФ
ст. 95), ``note``, ``updated_by`` (users.id), ``updated_at``. No personal data.

Revision ID: 0012_calendar_overrides
Revises: 0011_access_request_delivery
"""
import sqlalchemy as sa
from alembic import op


revision = "0012_calendar_overrides"
down_revision = "0011_access_request_delivery"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "calendar_overrides",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("hours", sa.Float(), nullable=True),
        sa.Column("note", sa.String(length=300), nullable=True),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('holiday', 'working', 'shortened')", name=op.f("ck_calendar_overrides_kind")),
        sa.CheckConstraint("hours IS NULL OR (hours > 0 AND hours <= 24)", name=op.f("ck_calendar_overrides_hours")),
        sa.ForeignKeyConstraint(["updated_by"], ["users.id"], name=op.f("fk_calendar_overrides_updated_by_users")),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_calendar_overrides")),
    )


def downgrade():
    op.drop_table("calendar_overrides")
