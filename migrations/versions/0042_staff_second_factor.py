"""Staff second factor (issue 17): the TOTP secret encrypted under the account's own data key,
the enrolment moment, the last accepted time step (no replay), and hashed one-time recovery codes.

The plaintext ``users.totp_secret`` column was never written by any version; it is dropped so a
secret can never land there in clear.

Revision ID: 0042_staff_second_factor
Revises: 0041_telephony_call_appeals
"""
import sqlalchemy as sa
from alembic import op

revision = "0042_staff_second_factor"
down_revision = "0041_telephony_call_appeals"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_secret_enc", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("mfa_key_owner", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("totp_enrolled_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_users_mfa_key_owner"), ["mfa_key_owner"])
        batch_op.drop_column("totp_secret")
    op.create_table(
        "user_recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_user_recovery_codes_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_recovery_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_user_recovery_codes_code_hash")),
    )
    with op.batch_alter_table("user_recovery_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_recovery_codes_user_id"), ["user_id"], unique=False)


def downgrade():
    op.drop_table("user_recovery_codes")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_secret", sa.String(length=64), nullable=True))
        batch_op.drop_constraint(batch_op.f("uq_users_mfa_key_owner"), type_="unique")
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_enrolled_at")
        batch_op.drop_column("mfa_key_owner")
        batch_op.drop_column("totp_secret_enc")
