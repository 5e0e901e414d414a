"""``telephony_calls.recording_url_enc``: the recording's address at the PBX, encrypted (issue 13)

The fetch job took the ``recording`` event's URL as an argument, so it sat in Redis in clear (the job's
hash, the registries, ``crm status``); a PBX often names the file after the caller's number. The URL is
now kept on the call record, encrypted under the record's data-key owner like ``caller``, and emptied
once the recording is fetched or refused; the job gets the record's id only.

Revision ID: 0040_telephony_recording_url
Revises: 0039_qa_check_state
"""
import sqlalchemy as sa
from alembic import op

revision = "0040_telephony_recording_url"
down_revision = "0039_qa_check_state"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("telephony_calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recording_url_enc", sa.LargeBinary(), nullable=True))


def downgrade():
    with op.batch_alter_table("telephony_calls", schema=None) as batch_op:
        batch_op.drop_column("recording_url_enc")
