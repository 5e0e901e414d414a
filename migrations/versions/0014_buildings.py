"""buildings: the buildings register (issue 14, point 2)

``buildings``: ``id``, ``address`` (as imported), ``address_key`` (normalised, unique: what makes
``crm buildings import`` idempotent), ``fias_id`` (ФИАС/ГАР GUID, unique when given),
``entrances``, ``apartments``, ``created_at``, ``updated_at``. No personal data.

Revision ID: 0014_buildings
Revises: 0013_selfservice_secrets_hashed
"""
import sqlalchemy as sa
from alembic import op


revision = "0014_buildings"
down_revision = "0013_selfservice_secrets_hashed"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "buildings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("address_key", sa.String(length=300), nullable=False),
        sa.Column("fias_id", sa.String(length=36), nullable=True),
        sa.Column("entrances", sa.Integer(), nullable=True),
        sa.Column("apartments", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("entrances IS NULL OR entrances > 0", name=op.f("ck_buildings_entrances")),
        sa.CheckConstraint("apartments IS NULL OR apartments >= 0", name=op.f("ck_buildings_apartments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_buildings")),
        sa.UniqueConstraint("address_key", name=op.f("uq_buildings_address_key")),
        sa.UniqueConstraint("fias_id", name=op.f("uq_buildings_fias_id")),
    )


def downgrade():
    op.drop_table("buildings")
