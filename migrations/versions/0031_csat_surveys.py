"""CSAT surveys after an appeal's closure (issue 15, point 3)

One row per appeal and closure cycle: the single-use link's token hash, its expiry, and the answer
(solved, score 1–5, first time, the comment as ciphertext under the citizen's key).

Revision ID: 0031_csat_surveys
Revises: 0030_incidents
"""
import sqlalchemy as sa
from alembic import op


revision = "0031_csat_surveys"
down_revision = "0030_incidents"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "csat_surveys",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("appeal_id", sa.String(36), nullable=False),
        sa.Column("citizen_id", sa.String(36), nullable=False),
        sa.Column("cycle", sa.Integer(), nullable=False),
        sa.Column("closed_status", sa.String(20), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sms_id", sa.String(36), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("solved", sa.Boolean(), nullable=True),
        sa.Column("score", sa.SmallInteger(), nullable=True),
        sa.Column("first_time", sa.Boolean(), nullable=True),
        sa.Column("reopened", sa.Boolean(), nullable=False),
        sa.Column("comment_enc", sa.LargeBinary(), nullable=True),
        sa.CheckConstraint("score IS NULL OR (score >= 1 AND score <= 5)", name=op.f("ck_csat_surveys_score")),
        sa.ForeignKeyConstraint(["appeal_id"], ["appeals.id"], name=op.f("fk_csat_surveys_appeal_id_appeals")),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"], name=op.f("fk_csat_surveys_citizen_id_citizens")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_csat_surveys")),
        sa.UniqueConstraint("appeal_id", "cycle", name="uq_csat_surveys_appeal_cycle"),
        sa.UniqueConstraint("token_hash", name=op.f("uq_csat_surveys_token_hash")),
    )
    with op.batch_alter_table("csat_surveys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_csat_surveys_appeal_id"), ["appeal_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_csat_surveys_citizen_id"), ["citizen_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_csat_surveys_answered_at"), ["answered_at"], unique=False)


def downgrade():
    op.drop_table("csat_surveys")
