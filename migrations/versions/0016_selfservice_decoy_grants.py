"""self-service: decoy grants for numbers nobody has

``selfservice_grants.citizen_id`` becomes nullable: a code asked for a number no citizen has (or
over the hourly limit) gets a grant row of its own with ``citizen_id`` NULL, whose code is never
sent (crm.consent.selfservice.request_code), so a known and an unknown number take the same steps
and get the same answers. No personal data: the row holds no number.

Revision ID: 0016_selfservice_decoy_grants
Revises: 0015_appeal_building
"""
import sqlalchemy as sa
from alembic import op

revision = "0016_selfservice_decoy_grants"
down_revision = "0015_appeal_building"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("selfservice_grants", schema=None) as batch_op:
        batch_op.alter_column("citizen_id", existing_type=sa.String(length=36), nullable=True)


def downgrade():
    op.execute("DELETE FROM selfservice_grants WHERE citizen_id IS NULL")
    with op.batch_alter_table("selfservice_grants", schema=None) as batch_op:
        batch_op.alter_column("citizen_id", existing_type=sa.String(length=36), nullable=False)
