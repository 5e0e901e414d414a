"""access log append-only on PostgreSQL

A trigger refuses UPDATE and DELETE on access_log for every role, the application's included
(issue: the access log the DPO can trust). SQLite has no roles; there the hash chain and
`crm audit verify` detect any edit.

Revision ID: 0002_access_log_append_only
Revises: 0001_initial
"""
from alembic import op

revision = "0002_access_log_append_only"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
        CREATE FUNCTION crm_access_log_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'access_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
        END $$;
    """)
    op.execute("""
        CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log
        FOR EACH ROW EXECUTE FUNCTION crm_access_log_immutable();
    """)


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS access_log_append_only ON access_log")
    op.execute("DROP FUNCTION IF EXISTS crm_access_log_immutable()")
