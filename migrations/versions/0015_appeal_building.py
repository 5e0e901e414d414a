"""appeals.building_id: the house of the buildings register picked at intake (issue 14, point 2)

Revision ID: 0015_appeal_building
Revises: 0014_buildings
"""
import sqlalchemy as sa
from alembic import op


revision = "0015_appeal_building"
down_revision = "0014_buildings"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("appeals") as batch:
        batch.add_column(sa.Column("building_id", sa.Integer(), nullable=True))
        batch.create_index(batch.f("ix_appeals_building_id"), ["building_id"], unique=False)
        batch.create_foreign_key(batch.f("fk_appeals_building_id_buildings"), "buildings", ["building_id"], ["id"])


def downgrade():
    with op.batch_alter_table("appeals") as batch:
        batch.drop_constraint(batch.f("fk_appeals_building_id_buildings"), type_="foreignkey")
        batch.drop_index(batch.f("ix_appeals_building_id"))
        batch.drop_column("building_id")
