"""the outbox carries real deliveries: channel (sms|email), sealed text, idempotency key, provider
status (issue 15, point 2)

``sms_outbox`` becomes the record of every message to a citizen, SMS or e-mail, and of its delivery:
``channel``, ``subject``, ``body_enc`` (the whole text sealed under the citizen's data key until it
has left), ``event_key`` (one message per event and channel), ``urgent``, ``provider`` and
``provider_message_id`` (matched by the provider's delivery callback), ``attempts``, ``last_error``,
``scheduled_for`` (deferred past quiet hours), ``sent_at``, ``delivered_at``, ``status_at``.

Rows written before this revision say «sent» although no provider was ever connected: the outbox was
the whole delivery. They become ``logged`` (written to the outbox, not sent).

Revision ID: 0032_notification_delivery
Revises: 0031_csat_surveys
"""
import sqlalchemy as sa
from alembic import op

revision = "0032_notification_delivery"
down_revision = "0031_csat_surveys"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("sms_outbox", schema=None) as batch_op:
        batch_op.alter_column("to_masked", existing_type=sa.String(length=40), type_=sa.String(length=80))
        batch_op.add_column(sa.Column("channel", sa.String(length=10), server_default="sms", nullable=False))
        batch_op.add_column(sa.Column("subject", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("body_enc", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("event_key", sa.String(length=160), nullable=True))
        batch_op.add_column(sa.Column("urgent", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("provider", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("provider_message_id", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("last_error", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("status_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_sms_outbox_event_key"), ["event_key"])
        batch_op.create_index(batch_op.f("ix_sms_outbox_provider_message_id"), ["provider_message_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sms_outbox_appeal_id"), ["appeal_id"], unique=False)
    op.execute("UPDATE sms_outbox SET status = 'logged' WHERE status = 'sent'")


def downgrade():
    op.execute("UPDATE sms_outbox SET status = 'sent' WHERE status IN ('logged', 'delivered')")
    op.execute("DELETE FROM sms_outbox WHERE channel <> 'sms'")
    with op.batch_alter_table("sms_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sms_outbox_appeal_id"))
        batch_op.drop_index(batch_op.f("ix_sms_outbox_provider_message_id"))
        batch_op.drop_constraint(batch_op.f("uq_sms_outbox_event_key"), type_="unique")
        for col in ("status_at", "delivered_at", "sent_at", "scheduled_for", "last_error", "attempts",
                    "provider_message_id", "provider", "urgent", "event_key", "body_enc", "subject", "channel"):
            batch_op.drop_column(col)
        batch_op.alter_column("to_masked", existing_type=sa.String(length=80), type_=sa.String(length=40))
