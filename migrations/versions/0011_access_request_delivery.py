"""access requests: identity verification, a second DPO's approval and delivery before any export

New nullable columns of ``data_subject_requests`` (152-ФЗ ст. 14, ст. 20: the data go to the data
subject, and only once the subject's identity is established):

* ``verification_method`` (``self_service_code`` | ``document``), ``verification_document`` (the kind
  of document seen, e.g. ``passport_rf``; never its number), ``verification_note`` (free notes, refused
  when they hold a document number), ``verification_by`` (the DPO who recorded it),
  ``verified_at`` (when the identity was established: when the document was seen, or when the citizen
  signed in with the SMS code), ``verification_grant_id`` (that code's self-service grant);
* ``export_approved_by`` / ``export_approved_at``: the second DPO who approved the answer (a CHECK
  keeps them apart from ``verification_by``, as ``four_eyes`` does for erasures);
* ``delivery_method`` (``self_service`` | ``print``), ``delivered_at``, ``delivered_by``.

Rows made before this revision keep NULLs (an old request must go through the steps before it is
exported again).

Revision ID: 0011_access_request_delivery
Revises: 0010_citizen_submission_key
"""
import sqlalchemy as sa
from alembic import op

revision = "0011_access_request_delivery"
down_revision = "0010_citizen_submission_key"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
COLUMNS = [("verification_method", sa.String(length=20)), ("verification_document", sa.String(length=40)),
           ("verification_note", sa.Text()), ("verification_by", sa.Integer()), ("verified_at", TIME),
           ("verification_grant_id", sa.String(length=36)), ("export_approved_by", sa.Integer()),
           ("export_approved_at", TIME), ("delivery_method", sa.String(length=20)), ("delivered_at", TIME),
           ("delivered_by", sa.Integer())]


def upgrade():
    with op.batch_alter_table("data_subject_requests", schema=None) as batch_op:
        for name, type_ in COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_data_subject_requests_export_four_eyes"),
            "export_approved_by IS NULL OR verification_by IS NULL OR export_approved_by <> verification_by")


def downgrade():
    with op.batch_alter_table("data_subject_requests", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_data_subject_requests_export_four_eyes"), type_="check")
        for name, _ in reversed(COLUMNS):
            batch_op.drop_column(name)
