"""append-only tables refuse TRUNCATE on PostgreSQL (issue 13)

The row triggers of 0002 (access_log: UPDATE, DELETE), 0005/0025/0034 (consent_events: UPDATE) and 0005
(destruction_acts: UPDATE) never fire for TRUNCATE, which empties a table without touching a row. A
statement-level trigger on each now refuses it, for every role: only the tables' owner can switch it
off (``ALTER TABLE … DISABLE TRIGGER``), which the application's own role (``crm db grant-app-role``)
is not. SQLite has no TRUNCATE.

Revision ID: 0035_append_only_truncate
Revises: 0034_evidence_ref_erasable
"""
from alembic import op

revision = "0035_append_only_truncate"
down_revision = "0034_evidence_ref_erasable"
branch_labels = None
depends_on = None

#: table -> its TRUNCATE trigger
TABLES = {"access_log": "access_log_no_truncate", "consent_events": "consent_events_no_truncate",
          "destruction_acts": "destruction_acts_no_truncate"}


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
        CREATE FUNCTION crm_refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
        END $$;
    """)
    for table, trigger in TABLES.items():
        op.execute(f"CREATE TRIGGER {trigger} BEFORE TRUNCATE ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION crm_refuse_truncate()")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, trigger in TABLES.items():
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS crm_refuse_truncate()")
