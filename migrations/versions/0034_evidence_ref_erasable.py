"""erasure may clear ``consent_events.evidence_ref`` (issue 13)

A paper consent's registration number is typed by staff and kept in clear on the append-only consent
record; like the withdrawal's (0025) it is now registered as a column erasure clears
(crm/consent/personal_data.py). The append-only trigger refused any change of ``evidence_ref``; it now
lets it go to NULL (never to another value, and never from NULL to a value), everything else unchanged.

Revision ID: 0034_evidence_ref_erasable
Revises: 0033_notification_templates
"""
from alembic import op

revision = "0034_evidence_ref_erasable"
down_revision = "0033_notification_templates"
branch_labels = None
depends_on = None

IMMUTABLE = ("id", "citizen_id", "purpose_code", "text_version", "text_hash", "channel", "evidence_call_id",
             "evidence_offset_s", "operator_id", "given", "at", "expires_at", "appeal_id", "evidence_kind",
             "evidence_ref", "controller_name", "controller_address")
WITHDRAWAL = ("withdrawn_at", "withdrawn_channel", "withdrawn_by", "withdrawn_call_id", "withdrawn_offset_s")
MESSAGE = "consent_events is append-only: only a first withdrawal may be recorded"


def _install(immutable: tuple[str, ...], evidence_may_clear: bool) -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        old = ", ".join(f"OLD.{c}" for c in immutable)
        new = ", ".join(f"NEW.{c}" for c in immutable)
        wold = ", ".join(f"OLD.{c}" for c in WITHDRAWAL)
        wnew = ", ".join(f"NEW.{c}" for c in WITHDRAWAL)
        evidence = ("OR (NEW.evidence_ref IS NOT NULL AND NEW.evidence_ref IS DISTINCT FROM OLD.evidence_ref)"
                    if evidence_may_clear else "")
        op.execute(f"""
            CREATE OR REPLACE FUNCTION crm_consent_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF ROW({new}) IS DISTINCT FROM ROW({old})
                   OR (OLD.withdrawn_at IS NOT NULL AND ROW({wnew}) IS DISTINCT FROM ROW({wold}))
                   OR (OLD.withdrawn_at IS NOT NULL AND NEW.withdrawn_ref IS NOT NULL
                       AND NEW.withdrawn_ref IS DISTINCT FROM OLD.withdrawn_ref)
                   {evidence} THEN
                    RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN NEW;
            END $$;
        """)
    elif dialect == "sqlite":
        changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in immutable)
        wchanged = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in WITHDRAWAL)
        evidence = ("OR (NEW.evidence_ref IS NOT NULL AND NEW.evidence_ref IS NOT OLD.evidence_ref)"
                    if evidence_may_clear else "")
        op.execute("DROP TRIGGER IF EXISTS consent_events_append_only")
        op.execute(f"""
            CREATE TRIGGER consent_events_append_only BEFORE UPDATE ON consent_events
            WHEN {changed} OR (OLD.withdrawn_at IS NOT NULL AND ({wchanged}))
                 OR (OLD.withdrawn_at IS NOT NULL AND NEW.withdrawn_ref IS NOT NULL
                     AND NEW.withdrawn_ref IS NOT OLD.withdrawn_ref) {evidence}
            BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END
        """)


def upgrade():
    _install(tuple(c for c in IMMUTABLE if c != "evidence_ref"), evidence_may_clear=True)


def downgrade():
    _install(IMMUTABLE, evidence_may_clear=False)
