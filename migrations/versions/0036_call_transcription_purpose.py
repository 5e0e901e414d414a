"""``calls.transcription_purpose``: what the queued transcription is for (issue 13)

The reconciler re-queued a dead transcription job as an upload's (``appeal_processing``), so a
supervisor's re-run for quality control lost the QA-consent check its job makes when it runs. The
purpose is now kept on the call when the job is queued and re-used by the reconciler. Rows queued
before this migration have none and are re-queued as before.

Revision ID: 0036_call_transcription_purpose
Revises: 0035_append_only_truncate
"""
import sqlalchemy as sa
from alembic import op

revision = "0036_call_transcription_purpose"
down_revision = "0035_append_only_truncate"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("transcription_purpose", sa.String(length=40), nullable=True))


def downgrade():
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("transcription_purpose")
