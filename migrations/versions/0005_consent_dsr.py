"""consent and data subject rights (152-ФЗ): the register of purposes, consent evidence, requests and
their clocks, self-service grants, the SMS outbox, destruction acts, retention runs

* ``purposes``: the register's columns — categories of subjects, actions, processing method,
  recipients, where the retention period comes from, what happens when it ends, who changed it.
* ``consent_events``: the appeal, the kind and reference of the evidence, the controller's name
  and address rendered into the text, the withdrawal's evidence. A trigger makes the table
  append-only for the application: an UPDATE may only fill the withdrawal columns, once (PostgreSQL
  and SQLite; DELETE is left to the database role's privileges — revoke it in production).
* ``data_subject_requests`` (with a CHECK that the approver of an erasure is not its requester),
  ``selfservice_grants`` (signed-link ids and hashed SMS codes, used once), ``sms_outbox``,
  ``destruction_acts`` (no UPDATE, trigger), ``retention_runs``.

Revision ID: 0005_consent_dsr
Revises: 0006_qa (the head when this was written; 0006_qa revises 0004_audit_alerts)
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_consent_dsr"
down_revision = "0006_qa"
branch_labels = None
depends_on = None

PURPOSE_COLUMNS = [("subjects", sa.String(length=300)), ("actions", sa.Text()), ("processing_method", sa.String(length=300)),
                   ("recipients", sa.Text()), ("retention_basis", sa.Text())]
CONSENT_COLUMNS = [("appeal_id", sa.String(length=36)), ("evidence_kind", sa.String(length=20)),
                   ("evidence_ref", sa.String(length=200)), ("controller_name", sa.String(length=300)),
                   ("controller_address", sa.String(length=300)), ("withdrawn_call_id", sa.String(length=36)),
                   ("withdrawn_offset_s", sa.Float()), ("withdrawn_ref", sa.String(length=200))]
IMMUTABLE = ("id", "citizen_id", "purpose_code", "text_version", "text_hash", "channel", "evidence_call_id",
             "evidence_offset_s", "operator_id", "given", "at", "expires_at", "appeal_id", "evidence_kind",
             "evidence_ref", "controller_name", "controller_address")
WITHDRAWAL = ("withdrawn_at", "withdrawn_channel", "withdrawn_by", "withdrawn_call_id", "withdrawn_offset_s",
              "withdrawn_ref")
TIME = sa.DateTime(timezone=True)
UUID = sa.String(length=36)


def _triggers(dialect: str) -> None:
    if dialect == "postgresql":
        old = ", ".join(f"OLD.{c}" for c in IMMUTABLE)
        new = ", ".join(f"NEW.{c}" for c in IMMUTABLE)
        wold = ", ".join(f"OLD.{c}" for c in WITHDRAWAL)
        wnew = ", ".join(f"NEW.{c}" for c in WITHDRAWAL)
        op.execute(f"""
            CREATE FUNCTION crm_consent_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF ROW({new}) IS DISTINCT FROM ROW({old})
                   OR (OLD.withdrawn_at IS NOT NULL AND ROW({wnew}) IS DISTINCT FROM ROW({wold})) THEN
                    RAISE EXCEPTION 'consent_events is append-only: only a first withdrawal may be recorded'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN NEW;
            END $$;
        """)
        op.execute("CREATE TRIGGER consent_events_append_only BEFORE UPDATE ON consent_events "
                   "FOR EACH ROW EXECUTE FUNCTION crm_consent_events_append_only()")
        op.execute("""
            CREATE FUNCTION crm_destruction_acts_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'destruction_acts cannot be changed' USING ERRCODE = 'insufficient_privilege';
            END $$;
        """)
        op.execute("CREATE TRIGGER destruction_acts_immutable BEFORE UPDATE ON destruction_acts "
                   "FOR EACH ROW EXECUTE FUNCTION crm_destruction_acts_immutable()")
    elif dialect == "sqlite":
        changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in IMMUTABLE)
        wchanged = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in WITHDRAWAL)
        op.execute(f"""
            CREATE TRIGGER consent_events_append_only BEFORE UPDATE ON consent_events
            WHEN {changed} OR (OLD.withdrawn_at IS NOT NULL AND ({wchanged}))
            BEGIN SELECT RAISE(ABORT, 'consent_events is append-only: only a first withdrawal may be recorded'); END
        """)
        op.execute("""
            CREATE TRIGGER destruction_acts_immutable BEFORE UPDATE ON destruction_acts
            BEGIN SELECT RAISE(ABORT, 'destruction_acts cannot be changed'); END
        """)


def upgrade():
    with op.batch_alter_table("purposes", schema=None) as batch_op:
        for name, type_ in PURPOSE_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, server_default="", nullable=False))
        batch_op.add_column(sa.Column("retention_action", sa.String(length=20), server_default="erase", nullable=False))
        batch_op.add_column(sa.Column("updated_at", TIME, nullable=True))
        batch_op.add_column(sa.Column("updated_by", sa.Integer(), nullable=True))

    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        for name, type_ in CONSENT_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
        batch_op.create_index(batch_op.f("ix_consent_events_appeal_id"), ["appeal_id"], unique=False)

    op.create_table(
        "data_subject_requests",
        sa.Column("id", UUID, nullable=False),
        sa.Column("citizen_id", UUID, nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("purpose_code", sa.String(length=40), nullable=True),
        sa.Column("consent_id", UUID, nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("due_at", TIME, nullable=False),
        sa.Column("extended_due_at", TIME, nullable=True),
        sa.Column("extension_reason", sa.Text(), nullable=True),
        sa.Column("extended_at", TIME, nullable=True),
        sa.Column("extended_by", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("answered_at", TIME, nullable=True),
        sa.Column("answered_by", sa.Integer(), nullable=True),
        sa.Column("answer_note", sa.Text(), nullable=True),
        sa.Column("export_sha256", sa.String(length=64), nullable=True),
        sa.Column("export_at", TIME, nullable=True),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("approved_by", sa.Integer(), nullable=True),
        sa.Column("approved_at", TIME, nullable=True),
        sa.Column("destruction_record_id", UUID, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.CheckConstraint("approved_by IS NULL OR requested_by IS NULL OR approved_by <> requested_by",
                           name=op.f("ck_data_subject_requests_four_eyes")),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"],
                                name=op.f("fk_data_subject_requests_citizen_id_citizens")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_subject_requests")),
    )
    with op.batch_alter_table("data_subject_requests", schema=None) as batch_op:
        for col in ("citizen_id", "type", "received_at", "due_at", "status"):
            batch_op.create_index(batch_op.f(f"ix_data_subject_requests_{col}"), [col], unique=False)

    op.create_table(
        "selfservice_grants",
        sa.Column("id", UUID, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("citizen_id", UUID, nullable=False),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("expires_at", TIME, nullable=False),
        sa.Column("used_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"], name=op.f("fk_selfservice_grants_citizen_id_citizens")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_selfservice_grants")),
    )
    with op.batch_alter_table("selfservice_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_selfservice_grants_citizen_id"), ["citizen_id"], unique=False)

    op.create_table(
        "sms_outbox",
        sa.Column("id", UUID, nullable=False),
        sa.Column("citizen_id", UUID, nullable=True),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("appeal_id", UUID, nullable=True),
        sa.Column("appeal_event_id", UUID, nullable=True),
        sa.Column("to_masked", sa.String(length=40), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("deidentified_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(["citizen_id"], ["citizens.id"], name=op.f("fk_sms_outbox_citizen_id_citizens")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_outbox")),
        sa.UniqueConstraint("appeal_event_id", name=op.f("uq_sms_outbox_appeal_event_id")),
    )
    with op.batch_alter_table("sms_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sms_outbox_citizen_id"), ["citizen_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sms_outbox_purpose"), ["purpose"], unique=False)
        batch_op.create_index(batch_op.f("ix_sms_outbox_created_at"), ["created_at"], unique=False)

    op.create_table(
        "destruction_acts",
        sa.Column("id", UUID, nullable=False),
        sa.Column("number", sa.String(length=30), nullable=False),
        sa.Column("destruction_record_id", UUID, nullable=False),
        sa.Column("citizen_id", UUID, nullable=False),
        sa.Column("request_id", UUID, nullable=True),
        sa.Column("subject_ref", sa.Text(), nullable=False),
        sa.Column("controller_name", sa.String(length=300), nullable=False),
        sa.Column("controller_address", sa.String(length=300), nullable=False),
        sa.Column("information_system", sa.String(length=300), nullable=False),
        sa.Column("categories", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("destroyed_at", TIME, nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("approved_by_id", sa.Integer(), nullable=True),
        sa.Column("approved_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(["destruction_record_id"], ["destruction_records.id"],
                                name=op.f("fk_destruction_acts_destruction_record_id_destruction_records")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_destruction_acts")),
        sa.UniqueConstraint("number", name=op.f("uq_destruction_acts_number")),
        sa.UniqueConstraint("destruction_record_id", name=op.f("uq_destruction_acts_destruction_record_id")),
    )
    with op.batch_alter_table("destruction_acts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_destruction_acts_citizen_id"), ["citizen_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_destruction_acts_created_at"), ["created_at"], unique=False)

    op.create_table(
        "retention_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("finished_at", TIME, nullable=True),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("erased", sa.Integer(), nullable=False),
        sa.Column("deidentified", sa.Integer(), nullable=False),
        sa.Column("pending", sa.Integer(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_runs")),
    )
    with op.batch_alter_table("retention_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_retention_runs_started_at"), ["started_at"], unique=False)

    _triggers(op.get_bind().dialect.name)


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS destruction_acts_immutable ON destruction_acts")
        op.execute("DROP FUNCTION IF EXISTS crm_destruction_acts_immutable()")
        op.execute("DROP TRIGGER IF EXISTS consent_events_append_only ON consent_events")
        op.execute("DROP FUNCTION IF EXISTS crm_consent_events_append_only()")
    elif dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS destruction_acts_immutable")
        op.execute("DROP TRIGGER IF EXISTS consent_events_append_only")
    op.drop_table("retention_runs")
    op.drop_table("destruction_acts")
    op.drop_table("sms_outbox")
    op.drop_table("selfservice_grants")
    op.drop_table("data_subject_requests")
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_events_appeal_id"))
        for name, _ in reversed(CONSENT_COLUMNS):
            batch_op.drop_column(name)
    with op.batch_alter_table("purposes", schema=None) as batch_op:
        for name in ("updated_by", "updated_at", "retention_action", *[n for n, _ in reversed(PURPOSE_COLUMNS)]):
            batch_op.drop_column(name)
