"""self-service secrets kept only as HMACs; the SMS outbox keeps them masked

``selfservice_grants.token_hash`` (``VARCHAR(64)``, nullable): the HMAC of the random nonce a
self-service link's token now carries (crm.consent.selfservice), so a link cannot be rebuilt from the
database; NULL for links issued before this revision (they stay valid until they expire, 72 h).
The outbox (``sms_outbox.body``) held one-time codes and link URLs in clear: they are masked here
(``***``), as crm.consent.sms.send now writes them.

Revision ID: 0013_selfservice_secrets_hashed
Revises: 0012_calendar_overrides
"""
import re

import sqlalchemy as sa
from alembic import op

revision = "0013_selfservice_secrets_hashed"
down_revision = "0012_calendar_overrides"
branch_labels = None
depends_on = None

_CODE = re.compile(r"(?<!\d)\d{6}(?!\d)")
_LINK = re.compile(r"(/my/link/)[\w.~%-]+")


def _mask(kind: str, body: str) -> str:
    if kind == "code":
        return _CODE.sub("***", body)
    return _LINK.sub(r"\1***", body)


def upgrade():
    with op.batch_alter_table("selfservice_grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_hash", sa.String(length=64), nullable=True))
    outbox = sa.table("sms_outbox", sa.column("id", sa.String), sa.column("kind", sa.String),
                      sa.column("body", sa.Text))
    conn = op.get_bind()
    rows = conn.execute(sa.select(outbox.c.id, outbox.c.kind, outbox.c.body).where(
        outbox.c.kind.in_(("code", "link")), outbox.c.body.is_not(None))).all()
    for row in rows:
        masked = _mask(row.kind, row.body)
        if masked != row.body:
            conn.execute(outbox.update().where(outbox.c.id == row.id).values(body=masked))


def downgrade():
    # the masked secrets are gone for good (that is the point)
    with op.batch_alter_table("selfservice_grants", schema=None) as batch_op:
        batch_op.drop_column("token_hash")
