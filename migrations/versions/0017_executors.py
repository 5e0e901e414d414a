"""executors: the executors directory, appeals.executor_id and users.executor_id (issue 14, point 3)

``executors``: ``id``, ``name`` (unique), ``kind`` (emergency_dispatch, management_company,
utility_supplier, contractor), ``phone``, ``email``, ``address`` (the organisation's contacts),
``topics`` (JSON list of appeal topic codes served), ``active``, ``created_at``. No personal data.
``appeals.executor_id``: the executor the appeal is handed over to; ``users.executor_id``: the
service an executor-role account belongs to.

Revision ID: 0017_executors
Revises: 0016_selfservice_decoy_grants
"""
import sqlalchemy as sa
from alembic import op


revision = "0017_executors"
down_revision = "0016_selfservice_decoy_grants"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "executors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("email", sa.String(length=200), nullable=True),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('emergency_dispatch', 'management_company', 'utility_supplier', 'contractor')",
                           name=op.f("ck_executors_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_executors")),
        sa.UniqueConstraint("name", name=op.f("uq_executors_name")),
    )
    op.create_index(op.f("ix_executors_kind"), "executors", ["kind"], unique=False)
    for table in ("appeals", "users"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("executor_id", sa.Integer(), nullable=True))
            batch.create_index(batch.f(f"ix_{table}_executor_id"), ["executor_id"], unique=False)
            batch.create_foreign_key(batch.f(f"fk_{table}_executor_id_executors"), "executors",
                                     ["executor_id"], ["id"])


def downgrade():
    for table in ("users", "appeals"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(batch.f(f"fk_{table}_executor_id_executors"), type_="foreignkey")
            batch.drop_index(batch.f(f"ix_{table}_executor_id"))
            batch.drop_column("executor_id")
    op.drop_index(op.f("ix_executors_kind"), table_name="executors")
    op.drop_table("executors")
