"""citizens: the registration form's idempotency key

``citizens.submission_key`` (``VARCHAR(64)``, nullable, unique): the random key the operator's
new-citizen form carries (``crm.appeals.views.citizen_create``), so a double-clicked or re-sent
form registers one citizen, as ``appeals.submission_key`` does for appeals. Not personal data (a
random hex string chosen when the form was rendered); NULL for citizens registered otherwise (API,
demo data, rows made before this revision).

Revision ID: 0010_citizen_submission_key
Revises: 0009_audit_append_function
"""
import sqlalchemy as sa
from alembic import op

revision = "0010_citizen_submission_key"
down_revision = "0009_audit_append_function"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("citizens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("submission_key", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_citizens_submission_key"), ["submission_key"])


def downgrade():
    with op.batch_alter_table("citizens", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_citizens_submission_key"), type_="unique")
        batch_op.drop_column("submission_key")
