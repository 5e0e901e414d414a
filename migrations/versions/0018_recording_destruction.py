"""calls and destruction records: recordings destroyed on their own after a QA-consent withdrawal

* ``calls.recording_owner_id`` (nullable): the data-key owner the recording file is encrypted
  under. New recordings get a data key of their own (the call's id), so destroying one recording
  deletes its key from the key store (crypto-shredding, backups of the recordings included) while
  the citizen's other data stay readable. NULL for recordings stored before this revision: they are
  encrypted under the citizen's key (``calls.citizen_id``, else the call's id).
* ``calls.recording_destroyed_at`` (nullable): when the recording and the transcript were
  destroyed (152-ФЗ ст. 21 ч. 5: consent to call_recording_qa withdrawn).
* ``destruction_records.scope`` (``citizen`` | ``recordings``, default ``citizen``): what a
  destruction record covers. Only ``citizen`` records delete the citizen's data key
  (``crm.security.shredding.complete_pending``); ``recordings`` records name the calls whose
  recordings were destroyed.

Revision ID: 0018_recording_destruction
Revises: 0017_executors
"""
import sqlalchemy as sa
from alembic import op

revision = "0018_recording_destruction"
down_revision = "0017_executors"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recording_owner_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("recording_destroyed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("destruction_records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scope", sa.String(length=20), nullable=False, server_default="citizen"))


def downgrade():
    with op.batch_alter_table("destruction_records", schema=None) as batch_op:
        batch_op.drop_column("scope")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("recording_destroyed_at")
        batch_op.drop_column("recording_owner_id")
