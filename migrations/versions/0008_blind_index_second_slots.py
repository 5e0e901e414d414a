"""blind indexes: a second column for every index, so each index key can be rotated

* ``citizens.surname_bidx_b``, ``citizens.name_building_bidx_b`` and ``citizens.building_key_b``:
  slot ``b`` of the ``surname``, ``name_building`` and ``building`` blind indexes (slot ``a`` is
  the existing column), as ``phone_bidx_b`` is for ``phone`` (revision 0003). Same type as slot
  ``a`` (``VARCHAR(32)``, lower-case hex), nullable, indexed. Empty until ``crm keys index start
  NAME`` gives the slot a key (``crm.security.rotation``).

Downgrade drops the three columns and refuses while any of these indexes has a key in slot ``b``
or reads from it (the values would be lost with no way back): finish the rotation into slot ``a``
first.

Revision ID: 0008_blind_index_second_slots
Revises: 0007_audit_chain_function
"""
import sqlalchemy as sa
from alembic import op

revision = "0008_blind_index_second_slots"
down_revision = "0007_audit_chain_function"
branch_labels = None
depends_on = None

COLUMNS = ("surname_bidx_b", "name_building_bidx_b", "building_key_b")
INDEXES = ("surname", "name_building", "building")


def upgrade():
    with op.batch_alter_table("citizens", schema=None) as batch_op:
        for col in COLUMNS:
            batch_op.add_column(sa.Column(col, sa.String(length=32), nullable=True))
        for col in COLUMNS:
            batch_op.create_index(batch_op.f(f"ix_citizens_{col}"), [col], unique=False)


def downgrade():
    state = sa.table("blind_index_state", sa.column("name", sa.String), sa.column("key_b", sa.String),
                     sa.column("read_slot", sa.String))
    busy = op.get_bind().execute(sa.select(state.c.name).where(
        state.c.name.in_(INDEXES), sa.or_(state.c.key_b.isnot(None), state.c.read_slot == "b"))).scalars().all()
    if busy:
        raise RuntimeError(f"blind indexes {', '.join(sorted(busy))} use slot b: rotate them back into slot a "
                           "(`crm keys index start|switch|drop NAME`) before downgrading")
    with op.batch_alter_table("citizens", schema=None) as batch_op:
        for col in COLUMNS:
            batch_op.drop_index(batch_op.f(f"ix_citizens_{col}"))
        for col in COLUMNS:
            batch_op.drop_column(col)
