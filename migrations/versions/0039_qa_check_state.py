"""``qa_check_results.state``: passed, failed or unsure (issue 18 point 3)

An automatic check whose phrase was found only through words Whisper recognised with a low
probability is neither passed nor failed but ``unsure`` (``passed`` stays False, so sampling still
brings the call to a reviewer). Rows stored before this migration have NULL and are read as
passed/failed from ``passed``.

Revision ID: 0039_qa_check_state
Revises: 0038_user_sessions
"""
import sqlalchemy as sa
from alembic import op

revision = "0039_qa_check_state"
down_revision = "0038_user_sessions"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("qa_check_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("state", sa.String(length=10), nullable=True))


def downgrade():
    with op.batch_alter_table("qa_check_results", schema=None) as batch_op:
        batch_op.drop_column("state")
