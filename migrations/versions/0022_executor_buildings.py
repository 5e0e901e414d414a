"""executors.building_ids: the houses each executor serves (issue 14, point 3)

A JSON list of ids of the buildings register (``buildings.id``); empty: any building. With
``executors.topics`` it drives the hand-over suggestion (crm.executors.services.suggest).

Revision ID: 0022_executor_buildings
Revises: 0021_appeal_lifecycle
"""
import sqlalchemy as sa
from alembic import op

revision = "0022_executor_buildings"
down_revision = "0021_appeal_lifecycle"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("executors") as batch:
        batch.add_column(sa.Column("building_ids", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))


def downgrade():
    with op.batch_alter_table("executors") as batch:
        batch.drop_column("building_ids")
