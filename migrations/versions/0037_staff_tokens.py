"""Staff administration (issue 17 point 4): API tokens get a ``name`` and an ``expires_at``; users a
``last_login_at`` (the staff page shows when each signed in last).

A token issued before this migration has no name and never expires, as before.

Revision ID: 0037_staff_tokens
Revises: 0036_call_transcription_purpose
"""
import sqlalchemy as sa
from alembic import op

revision = "0037_staff_tokens"
down_revision = "0036_call_transcription_purpose"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=100), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("last_login_at")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
        batch_op.drop_column("name")
