"""``telephony_call_appeals``: appeals registered during a call, linked to its record (issue 16, point 2)

The screen pop's operator registers the caller's appeal while the call is answered; the appeal is
linked to the call record automatically (``appeal.registered`` hook of crm.telephony).

Revision ID: 0041_telephony_call_appeals
Revises: 0040_telephony_recording_url
"""
import sqlalchemy as sa
from alembic import op

revision = "0041_telephony_call_appeals"
down_revision = "0040_telephony_recording_url"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "telephony_call_appeals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("telephony_call_id", sa.String(length=36), nullable=False),
        sa.Column("appeal_id", sa.String(length=36), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["telephony_call_id"], ["telephony_calls.id"],
                                name=op.f("fk_telephony_call_appeals_telephony_call_id_telephony_calls"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["appeal_id"], ["appeals.id"], name=op.f("fk_telephony_call_appeals_appeal_id_appeals"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telephony_call_appeals")),
        sa.UniqueConstraint("telephony_call_id", "appeal_id",
                            name=op.f("uq_telephony_call_appeals_telephony_call_id")),
    )
    with op.batch_alter_table("telephony_call_appeals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_telephony_call_appeals_telephony_call_id"), ["telephony_call_id"],
                              unique=False)
        batch_op.create_index(batch_op.f("ix_telephony_call_appeals_appeal_id"), ["appeal_id"], unique=False)


def downgrade():
    with op.batch_alter_table("telephony_call_appeals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_telephony_call_appeals_appeal_id"))
        batch_op.drop_index(batch_op.f("ix_telephony_call_appeals_telephony_call_id"))
    op.drop_table("telephony_call_appeals")
