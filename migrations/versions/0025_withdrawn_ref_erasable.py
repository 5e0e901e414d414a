"""erasure may clear ``consent_events.withdrawn_ref`` (issue 13)

The registration number of a withdrawal received on paper is typed by the DPO and is registered as a
column erasure clears (crm/consent/personal_data.py). The append-only trigger of 0005 refused any
change of the withdrawal columns once a withdrawal is recorded; it now lets ``withdrawn_ref`` go to
NULL (never to another value), everything else unchanged.

Revision ID: 0025_withdrawn_ref_erasable
Revises: 0024_purpose_change_proposals
"""
from alembic import op

revision = "0025_withdrawn_ref_erasable"
down_revision = "0024_purpose_change_proposals"
branch_labels = None
depends_on = None

IMMUTABLE = ("id", "citizen_id", "purpose_code", "text_version", "text_hash", "channel", "evidence_call_id",
             "evidence_offset_s", "operator_id", "given", "at", "expires_at", "appeal_id", "evidence_kind",
             "evidence_ref", "controller_name", "controller_address")
WITHDRAWAL = ("withdrawn_at", "withdrawn_channel", "withdrawn_by", "withdrawn_call_id", "withdrawn_offset_s",
              "withdrawn_ref")
MESSAGE = "consent_events is append-only: only a first withdrawal may be recorded"


def _install(withdrawal: tuple[str, ...], ref_may_clear: bool) -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        old = ", ".join(f"OLD.{c}" for c in IMMUTABLE)
        new = ", ".join(f"NEW.{c}" for c in IMMUTABLE)
        wold = ", ".join(f"OLD.{c}" for c in withdrawal)
        wnew = ", ".join(f"NEW.{c}" for c in withdrawal)
        ref = ("OR (OLD.withdrawn_at IS NOT NULL AND NEW.withdrawn_ref IS NOT NULL "
               "AND NEW.withdrawn_ref IS DISTINCT FROM OLD.withdrawn_ref)") if ref_may_clear else ""
        op.execute(f"""
            CREATE OR REPLACE FUNCTION crm_consent_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF ROW({new}) IS DISTINCT FROM ROW({old})
                   OR (OLD.withdrawn_at IS NOT NULL AND ROW({wnew}) IS DISTINCT FROM ROW({wold}))
                   {ref} THEN
                    RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN NEW;
            END $$;
        """)
    elif dialect == "sqlite":
        changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in IMMUTABLE)
        wchanged = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in withdrawal)
        ref = ("OR (OLD.withdrawn_at IS NOT NULL AND NEW.withdrawn_ref IS NOT NULL "
               "AND NEW.withdrawn_ref IS NOT OLD.withdrawn_ref)") if ref_may_clear else ""
        op.execute("DROP TRIGGER IF EXISTS consent_events_append_only")
        op.execute(f"""
            CREATE TRIGGER consent_events_append_only BEFORE UPDATE ON consent_events
            WHEN {changed} OR (OLD.withdrawn_at IS NOT NULL AND ({wchanged})) {ref}
            BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END
        """)


def upgrade():
    _install(tuple(c for c in WITHDRAWAL if c != "withdrawn_ref"), ref_may_clear=True)


def downgrade():
    _install(WITHDRAWAL, ref_may_clear=False)
