"""access log: one text parameter per chaining call; the server fills the columns from the entry

`crm_audit_append(entries, early)` replaces `crm_audit_chain` (revision 0007). The application
sends each entry's canonical JSON split around `prev_hash` and `seq` (crm.security.audit.pg_parts)
as ONE text parameter — parts separated by U+001E, which canonical JSON never contains raw (JSON
escapes every control character) — instead of three text arrays plus a dozen typed values per
entry. Under the chain lock the function numbers and hashes the entries exactly as before (same
canonical encoding, same SHA-256: verification does not change), then fills the row from the
completed document with `jsonb_populate_record`, so the stored columns are the very values that
were hashed, and inserts all of them in one statement. Measured effect: bench/audit.py (the
application's CPU per append was the limit with 8 writers on 2 cores).

Revision ID: 0009_audit_append_function
Revises: 0008_blind_index_second_slots
"""
from alembic import op

revision = "0009_audit_append_function"
down_revision = "0008_blind_index_second_slots"
branch_labels = None
depends_on = None

CHAIN_LOCK_KEY = 7_410_551_771  # the same advisory lock as revision 0007


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
        CREATE FUNCTION crm_audit_append(entries text, early boolean) RETURNS bigint
        LANGUAGE plpgsql AS $$
        DECLARE
            parts text[] := string_to_array(entries, chr(30));  -- pre, mid, suf of each entry
            n int := cardinality(parts) / 3;
            s bigint;
            h text;
            doc text;
            rows jsonb[] := '{}';
        BEGIN
            IF entries IS NULL OR n = 0 OR cardinality(parts) <> 3 * n THEN
                RAISE EXCEPTION 'crm_audit_append: % parts, not three per entry', cardinality(parts);
            END IF;
            IF early THEN
                PERFORM set_config('synchronous_commit', 'off', true);  -- this transaction only
            END IF;
            -- Appenders queue on one advisory lock (a FIFO that grants to one waiter at a time).
            PERFORM pg_advisory_xact_lock(CHAIN_LOCK_KEY);
            SELECT audit_head.seq, audit_head.hash INTO s, h FROM audit_head WHERE audit_head.id = 1;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'access log chain head missing (run crm db upgrade)';
            END IF;
            FOR i IN 0 .. n - 1 LOOP
                s := s + 1;
                doc := parts[3 * i + 1] || '"' || h || '"' || parts[3 * i + 2] || s::text || parts[3 * i + 3];
                h := encode(sha256(convert_to(doc, 'UTF8')), 'hex');
                rows := rows || (doc::jsonb || jsonb_build_object('hash', h));
            END LOOP;
            INSERT INTO access_log SELECT r.* FROM unnest(rows) AS d, jsonb_populate_record(NULL::access_log, d) AS r;
            UPDATE audit_head SET seq = s, hash = h WHERE audit_head.id = 1;
            RETURN s;
        END $$;
    """.replace("CHAIN_LOCK_KEY", str(CHAIN_LOCK_KEY)))
    op.execute("DROP FUNCTION IF EXISTS crm_audit_chain(text[], text[], text[], boolean)")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS crm_audit_append(text, boolean)")
    # revision 0007's function again, for the code of that revision
    import importlib.util
    from pathlib import Path

    path = Path(__file__).with_name("0007_audit_chain_function.py")
    spec = importlib.util.spec_from_file_location("crm_migration_0007", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.upgrade()
