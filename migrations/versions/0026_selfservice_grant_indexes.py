"""indexes for the self-service grants' hourly count and their purge (issue 13, point 4)

``request_code`` counts the codes of one citizen, or the decoys (``citizen_id IS NULL``), created in
the last hour: ``ix_selfservice_grants_recent_codes`` (citizen_id, kind, created_at) answers it with a
range scan of that hour only, instead of reading every decoy ever made (a request for an unknown
number grew slower with the table: a timing oracle). ``ix_selfservice_grants_expires_at`` serves the
retention run's purge of expired grants (crm.consent.retention.purge_grants).

Revision ID: 0026_selfservice_grant_indexes
Revises: 0025_withdrawn_ref_erasable
"""
from alembic import op

revision = "0026_selfservice_grant_indexes"
down_revision = "0025_withdrawn_ref_erasable"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("selfservice_grants", schema=None) as batch_op:
        batch_op.create_index("ix_selfservice_grants_recent_codes", ["citizen_id", "kind", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_selfservice_grants_expires_at"), ["expires_at"], unique=False)


def downgrade():
    with op.batch_alter_table("selfservice_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_selfservice_grants_expires_at"))
        batch_op.drop_index("ix_selfservice_grants_recent_codes")
