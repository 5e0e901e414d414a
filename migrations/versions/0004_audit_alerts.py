"""access alerts for the DPO; the access log's purpose filter

* ``access_alerts``: unusual access found in the access log (crm/security/alerts.py) — one staff
  member reading many citizens in an hour, access tied to no appeal or call, access outside
  working hours, a break in the checkpoint key chain — for the DPO to acknowledge.
* an index on ``access_log.purpose`` (the DPO filters by purpose) and on ``(actor_id, at)`` (the
  alert scan and "what did this staff member see" read one person's entries by time).

Revision ID: 0004_audit_alerts
Revises: 0003_keystore_shredding
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_audit_alerts"
down_revision = "0003_keystore_shredding"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "access_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=30), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=80), nullable=True),
        sa.Column("citizen_id", sa.String(length=36), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ack_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ack_by", sa.Integer(), nullable=True),
        sa.Column("ack_comment", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_alerts")),
        sa.UniqueConstraint("key", name=op.f("uq_access_alerts_key")),
    )
    with op.batch_alter_table("access_alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_alerts_rule"), ["rule"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_alerts_actor_id"), ["actor_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_alerts_citizen_id"), ["citizen_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_alerts_created_at"), ["created_at"], unique=False)
    # plain CREATE INDEX: no table rebuild (a batch operation on SQLite would copy access_log)
    op.create_index("ix_access_log_purpose", "access_log", ["purpose"], unique=False)
    op.create_index("ix_access_log_actor_id_at", "access_log", ["actor_id", "at"], unique=False)


def downgrade():
    op.drop_index("ix_access_log_actor_id_at", table_name="access_log")
    op.drop_index("ix_access_log_purpose", table_name="access_log")
    with op.batch_alter_table("access_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_alerts_created_at"))
        batch_op.drop_index(batch_op.f("ix_access_alerts_citizen_id"))
        batch_op.drop_index(batch_op.f("ix_access_alerts_actor_id"))
        batch_op.drop_index(batch_op.f("ix_access_alerts_rule"))
    op.drop_table("access_alerts")
