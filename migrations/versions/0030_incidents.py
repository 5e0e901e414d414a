"""incidents: outages and mass incidents, their houses, linked appeals and calls, surge proposals (issue 15, point 1)

``incidents`` (topic, kind planned|emergency, scope buildings|street|district with ``area``/``area_key``,
operators' ``text``, ``starts_at``/``ends_at``, ``closed_at`` with ``closing_text``), ``incident_buildings``,
``incident_appeals`` (one incident per appeal), ``incident_calls`` (calls attached instead of an appeal),
``incident_proposals`` (surges of appeals proposed to the supervisors). No personal data.

Revision ID: 0030_incidents
Revises: 0029_telephony
"""
import sqlalchemy as sa
from alembic import op

revision = "0030_incidents"
down_revision = "0029_telephony"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=30), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("area", sa.String(length=300), nullable=True),
        sa.Column("area_key", sa.String(length=300), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("starts_at", TS, nullable=False),
        sa.Column("ends_at", TS, nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("closing_text", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("closed_by", sa.Integer(), nullable=True),
        sa.CheckConstraint("kind IN ('planned', 'emergency')", name=op.f("ck_incidents_kind")),
        sa.CheckConstraint("scope IN ('buildings', 'street', 'district')", name=op.f("ck_incidents_scope")),
        sa.CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name=op.f("ck_incidents_period")),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_incidents_created_by_users")),
        sa.ForeignKeyConstraint(["closed_by"], ["users.id"], name=op.f("fk_incidents_closed_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    op.create_index(op.f("ix_incidents_topic"), "incidents", ["topic"], unique=False)
    op.create_index(op.f("ix_incidents_starts_at"), "incidents", ["starts_at"], unique=False)
    op.create_index(op.f("ix_incidents_closed_at"), "incidents", ["closed_at"], unique=False)
    op.create_table(
        "incident_buildings",
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("building_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE",
                                name=op.f("fk_incident_buildings_incident_id_incidents")),
        sa.ForeignKeyConstraint(["building_id"], ["buildings.id"], name=op.f("fk_incident_buildings_building_id_buildings")),
        sa.PrimaryKeyConstraint("incident_id", "building_id", name=op.f("pk_incident_buildings")),
    )
    op.create_index(op.f("ix_incident_buildings_building_id"), "incident_buildings", ["building_id"], unique=False)
    op.create_table(
        "incident_appeals",
        sa.Column("appeal_id", sa.String(length=36), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(["appeal_id"], ["appeals.id"], ondelete="CASCADE",
                                name=op.f("fk_incident_appeals_appeal_id_appeals")),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE",
                                name=op.f("fk_incident_appeals_incident_id_incidents")),
        sa.PrimaryKeyConstraint("appeal_id", name=op.f("pk_incident_appeals")),
    )
    op.create_index(op.f("ix_incident_appeals_incident_id"), "incident_appeals", ["incident_id"], unique=False)
    op.create_table(
        "incident_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.String(length=36), nullable=True),
        sa.Column("call_id", sa.String(length=36), nullable=True),
        sa.Column("operator_id", sa.Integer(), nullable=True),
        sa.Column("at", TS, nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE",
                                name=op.f("fk_incident_calls_incident_id_incidents")),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"], name=op.f("fk_incident_calls_citizen_id_citizens")),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], name=op.f("fk_incident_calls_call_id_calls")),
        sa.ForeignKeyConstraint(["operator_id"], ["users.id"], name=op.f("fk_incident_calls_operator_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_calls")),
        sa.UniqueConstraint("call_id", name=op.f("uq_incident_calls_call_id")),
    )
    op.create_index(op.f("ix_incident_calls_incident_id"), "incident_calls", ["incident_id"], unique=False)
    op.create_index(op.f("ix_incident_calls_citizen_id"), "incident_calls", ["citizen_id"], unique=False)
    op.create_table(
        "incident_proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("building_id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=30), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("appeals_count", sa.Integer(), nullable=False),
        sa.Column("first_at", TS, nullable=False),
        sa.Column("last_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("decided_at", TS, nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'accepted', 'dismissed')", name=op.f("ck_incident_proposals_status")),
        sa.ForeignKeyConstraint(["building_id"], ["buildings.id"], name=op.f("fk_incident_proposals_building_id_buildings")),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"], name=op.f("fk_incident_proposals_decided_by_users")),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], name=op.f("fk_incident_proposals_incident_id_incidents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_proposals")),
        sa.UniqueConstraint("building_id", "topic", "first_at", name=op.f("uq_incident_proposals_building_id")),
    )
    op.create_index(op.f("ix_incident_proposals_building_id"), "incident_proposals", ["building_id"], unique=False)
    op.create_index(op.f("ix_incident_proposals_status"), "incident_proposals", ["status"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_incident_proposals_status"), table_name="incident_proposals")
    op.drop_index(op.f("ix_incident_proposals_building_id"), table_name="incident_proposals")
    op.drop_table("incident_proposals")
    op.drop_index(op.f("ix_incident_calls_citizen_id"), table_name="incident_calls")
    op.drop_index(op.f("ix_incident_calls_incident_id"), table_name="incident_calls")
    op.drop_table("incident_calls")
    op.drop_index(op.f("ix_incident_appeals_incident_id"), table_name="incident_appeals")
    op.drop_table("incident_appeals")
    op.drop_index(op.f("ix_incident_buildings_building_id"), table_name="incident_buildings")
    op.drop_table("incident_buildings")
    op.drop_index(op.f("ix_incidents_closed_at"), table_name="incidents")
    op.drop_index(op.f("ix_incidents_starts_at"), table_name="incidents")
    op.drop_index(op.f("ix_incidents_topic"), table_name="incidents")
    op.drop_table("incidents")
