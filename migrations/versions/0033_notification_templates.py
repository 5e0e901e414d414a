"""the supervisors' edits of the citizen notification templates (issue 15, point 2)

Revision ID: 0033_notification_templates
Revises: 0032_notification_delivery
"""
import sqlalchemy as sa
from alembic import op

revision = "0033_notification_templates"
down_revision = "0032_notification_delivery"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "notification_templates",
        sa.Column("key", sa.String(length=60), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_notification_templates")),
    )


def downgrade():
    op.drop_table("notification_templates")
