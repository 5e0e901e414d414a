"""quality assurance: scorecard versions with sections, evaluation revisions and disputes, automatic
check results, sampling rules and review queues, calibration sessions

* ``scorecards``: ``family`` (versions of one form), ``sections``, ``created_by``.
* ``evaluations``: ``revision``/``revised_at``; comments pinned to moments (``notes_enc``); the
  operator's answer (``operator_status``, ``respond_by``, ``acknowledged_at``, ``disputed_at``,
  ``dispute_reason_enc``) and the supervisor's resolution (``resolved_at``, ``resolved_by``,
  ``resolution_enc``). Existing evaluations become revision 1, status ``new``, without a deadline
  (``respond_by`` NULL: the operator was never asked, so they cannot be answered now).
* ``qa_evaluation_revisions``: replaced states of evaluations changed after a dispute.
* ``qa_check_results``: automatic checks per call (``crm.qa.checks``), one row per call and code.
* ``qa_sampling_rules`` and ``qa_queue_items``: what goes into the supervisors' review queues.
* ``qa_calibration_sessions`` and ``qa_calibration_scores``: blind scoring of one call by several
  supervisors.

Revision ID: 0006_qa
Revises: 0004_audit_alerts
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_qa"
down_revision = "0004_audit_alerts"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("scorecards", schema=None) as batch_op:
        batch_op.add_column(sa.Column("family", sa.String(length=40), server_default="default", nullable=False))
        batch_op.add_column(sa.Column("sections", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("created_by", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_scorecards_created_by_users"), "users", ["created_by"], ["id"])
        batch_op.create_index(batch_op.f("ix_scorecards_family"), ["family"], unique=False)

    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revision", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("revised_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("notes_enc", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("operator_status", sa.String(length=20), server_default="new", nullable=False))
        batch_op.add_column(sa.Column("respond_by", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("disputed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("dispute_reason_enc", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("resolved_by", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("resolution_enc", sa.LargeBinary(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_evaluations_resolved_by_users"), "users", ["resolved_by"], ["id"])
        batch_op.create_index(batch_op.f("ix_evaluations_operator_status"), ["operator_status"], unique=False)

    op.create_table(
        "qa_evaluation_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("evaluation_id", sa.String(length=36), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("scorecard_id", sa.Integer(), nullable=False),
        sa.Column("evaluator_id", sa.Integer(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replaced_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["evaluation_id"], ["evaluations.id"], ondelete="CASCADE",
                                name=op.f("fk_qa_evaluation_revisions_evaluation_id_evaluations")),
        sa.ForeignKeyConstraint(["scorecard_id"], ["scorecards.id"],
                                name=op.f("fk_qa_evaluation_revisions_scorecard_id_scorecards")),
        sa.ForeignKeyConstraint(["evaluator_id"], ["users.id"], name=op.f("fk_qa_evaluation_revisions_evaluator_id_users")),
        sa.ForeignKeyConstraint(["replaced_by"], ["users.id"], name=op.f("fk_qa_evaluation_revisions_replaced_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_evaluation_revisions")),
        sa.UniqueConstraint("evaluation_id", "revision", name="uq_qa_evaluation_revisions_evaluation_id"),
    )
    op.create_index(op.f("ix_qa_evaluation_revisions_evaluation_id"), "qa_evaluation_revisions", ["evaluation_id"])

    op.create_table(
        "qa_check_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=36), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("at_s", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], ondelete="CASCADE",
                                name=op.f("fk_qa_check_results_call_id_calls")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_check_results")),
        sa.UniqueConstraint("call_id", "code", name="uq_qa_check_results_call_id"),
    )
    op.create_index(op.f("ix_qa_check_results_call_id"), "qa_check_results", ["call_id"])
    op.create_index(op.f("ix_qa_check_results_code"), "qa_check_results", ["code"])

    op.create_table(
        "qa_sampling_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_sampling_rules")),
    )

    op.create_table(
        "qa_queue_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=36), nullable=False),
        sa.Column("operator_id", sa.Integer(), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("rule_id", sa.Integer(), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("period_key", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evaluation_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], ondelete="CASCADE", name=op.f("fk_qa_queue_items_call_id_calls")),
        sa.ForeignKeyConstraint(["operator_id"], ["users.id"], name=op.f("fk_qa_queue_items_operator_id_users")),
        sa.ForeignKeyConstraint(["assignee_id"], ["users.id"], name=op.f("fk_qa_queue_items_assignee_id_users")),
        sa.ForeignKeyConstraint(["rule_id"], ["qa_sampling_rules.id"],
                                name=op.f("fk_qa_queue_items_rule_id_qa_sampling_rules")),
        sa.ForeignKeyConstraint(["evaluation_id"], ["evaluations.id"], ondelete="SET NULL",
                                name=op.f("fk_qa_queue_items_evaluation_id_evaluations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_queue_items")),
        sa.UniqueConstraint("call_id", name=op.f("uq_qa_queue_items_call_id")),
    )
    op.create_index(op.f("ix_qa_queue_items_operator_id"), "qa_queue_items", ["operator_id"])
    op.create_index(op.f("ix_qa_queue_items_assignee_id"), "qa_queue_items", ["assignee_id"])
    op.create_index(op.f("ix_qa_queue_items_period_key"), "qa_queue_items", ["period_key"])
    op.create_index(op.f("ix_qa_queue_items_status"), "qa_queue_items", ["status"])

    op.create_table(
        "qa_calibration_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=36), nullable=False),
        sa.Column("scorecard_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("reference_id", sa.Integer(), nullable=False),
        sa.Column("participant_ids", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["call_id"], ["calls.id"], ondelete="CASCADE",
                                name=op.f("fk_qa_calibration_sessions_call_id_calls")),
        sa.ForeignKeyConstraint(["scorecard_id"], ["scorecards.id"],
                                name=op.f("fk_qa_calibration_sessions_scorecard_id_scorecards")),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_qa_calibration_sessions_created_by_users")),
        sa.ForeignKeyConstraint(["reference_id"], ["users.id"], name=op.f("fk_qa_calibration_sessions_reference_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_calibration_sessions")),
    )
    op.create_index(op.f("ix_qa_calibration_sessions_call_id"), "qa_calibration_sessions", ["call_id"])

    op.create_table(
        "qa_calibration_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("evaluator_id", sa.Integer(), nullable=False),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["qa_calibration_sessions.id"], ondelete="CASCADE",
                                name=op.f("fk_qa_calibration_scores_session_id_qa_calibration_sessions")),
        sa.ForeignKeyConstraint(["evaluator_id"], ["users.id"], name=op.f("fk_qa_calibration_scores_evaluator_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_calibration_scores")),
        sa.UniqueConstraint("session_id", "evaluator_id", name="uq_qa_calibration_scores_session_id"),
    )
    op.create_index(op.f("ix_qa_calibration_scores_session_id"), "qa_calibration_scores", ["session_id"])


def downgrade():
    op.drop_table("qa_calibration_scores")
    op.drop_table("qa_calibration_sessions")
    op.drop_table("qa_queue_items")
    op.drop_table("qa_sampling_rules")
    op.drop_table("qa_check_results")
    op.drop_table("qa_evaluation_revisions")
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_evaluations_operator_status"))
        batch_op.drop_constraint(batch_op.f("fk_evaluations_resolved_by_users"), type_="foreignkey")
        for col in ("resolution_enc", "resolved_by", "resolved_at", "dispute_reason_enc", "disputed_at",
                    "acknowledged_at", "respond_by", "operator_status", "notes_enc", "revised_at", "revision"):
            batch_op.drop_column(col)
    with op.batch_alter_table("scorecards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scorecards_family"))
        batch_op.drop_constraint(batch_op.f("fk_scorecards_created_by_users"), type_="foreignkey")
        for col in ("created_by", "sections", "family"):
            batch_op.drop_column(col)
