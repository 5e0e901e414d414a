"""access log: chain entries inside PostgreSQL

`crm_audit_chain(pre, mid, suf, early)` numbers and hashes a transaction's entries under the
chain-head row lock, on the server, so the lock is never held across a round trip to the
application (crm/security/audit.py explains the encoding split). The hash is the same SHA-256
over the same canonical JSON as before: verification does not change. SQLite chains in Python.

Revision ID: 0007_audit_chain_function
Revises: 0005_consent_dsr
"""
from alembic import op

revision = "0007_audit_chain_function"
down_revision = "0005_consent_dsr"
branch_labels = None
depends_on = None


CHAIN_LOCK_KEY = 7_410_551_771  # pg_advisory_xact_lock key of the access-log chain (arbitrary, fixed)


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""
        CREATE FUNCTION crm_audit_chain(pre text[], mid text[], suf text[], early boolean)
        RETURNS TABLE (o_seq bigint, o_prev text, o_hash text) LANGUAGE plpgsql AS $$
        DECLARE
            n int := cardinality(pre);
            s bigint;
            h text;
        BEGIN
            IF n IS NULL OR n = 0 OR cardinality(mid) <> n OR cardinality(suf) <> n THEN
                RAISE EXCEPTION 'crm_audit_chain: % entries, parts do not match', n;
            END IF;
            IF early THEN
                PERFORM set_config('synchronous_commit', 'off', true);  -- this transaction only
            END IF;
            -- Appenders queue on one advisory lock (a FIFO that grants to one waiter at a time)
            -- rather than on the head row's lock, whose release wakes every waiter at once.
            PERFORM pg_advisory_xact_lock(CHAIN_LOCK_KEY);
            SELECT audit_head.seq, audit_head.hash INTO s, h FROM audit_head WHERE audit_head.id = 1;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'access log chain head missing (run crm db upgrade)';
            END IF;
            FOR i IN 1..n LOOP
                s := s + 1;
                o_seq := s;
                o_prev := h;
                h := encode(sha256(convert_to(pre[i] || '"' || h || '"' || mid[i] || s::text || suf[i], 'UTF8')),
                            'hex');
                IF h IS NULL THEN
                    RAISE EXCEPTION 'crm_audit_chain: entry % has a NULL part', i;
                END IF;
                o_hash := h;
                RETURN NEXT;
            END LOOP;
            UPDATE audit_head SET seq = s, hash = h WHERE audit_head.id = 1;
        END $$;
    """.replace("CHAIN_LOCK_KEY", str(CHAIN_LOCK_KEY)))


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS crm_audit_chain(text[], text[], text[], boolean)")
