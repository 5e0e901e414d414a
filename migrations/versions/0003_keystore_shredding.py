"""key store separate from the main database; blind-index slots; destruction records

* ``data_keys`` leaves the main database: its rows are copied into the key store (the
  ``keystore`` bind, default ``instance/keystore.sqlite3``, see crm/security/keystore.py) and the
  table is dropped, so the main database's backups hold no data keys any more. The copy is
  idempotent (rows already in the key store are skipped), committed in the key store before the
  table is dropped here.
* ``citizens.phone_bidx_b`` (second slot of the phone blind index, for key rotation) and
  ``citizens.name_building_bidx`` (surname + building). Citizens registered before this revision get
  ``name_building_bidx`` when their card is next saved.
* ``blind_index_state`` and ``destruction_records``.

Revision ID: 0003_keystore_shredding
Revises: 0002_access_log_append_only
"""
import sqlalchemy as sa
from alembic import context, op

revision = "0003_keystore_shredding"
down_revision = "0002_access_log_append_only"
branch_labels = None
depends_on = None

_data_keys = sa.table("data_keys", sa.column("id", sa.String), sa.column("owner_id", sa.String),
                      sa.column("kek_id", sa.String), sa.column("wrapped", sa.LargeBinary),
                      sa.column("created_at", sa.DateTime(timezone=True)))


def _keystore_engine():
    from flask import current_app

    ext = current_app.extensions["sqlalchemy"]
    main = op.get_bind().engine.url
    ks = ext.engines["keystore"]
    if ks.url.render_as_string(hide_password=False) == main.render_as_string(hide_password=False):
        raise RuntimeError("the key store must be a database separate from the main one (CRM_KEYSTORE_URL)")
    from crm.security import keystore

    keystore.create_schema(current_app)
    return ks


def _aware(value):
    from datetime import datetime, timezone

    if value is None:
        return datetime.now(timezone.utc)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _copy(rows_from, to_engine, batch=5000):
    from crm.security.models import DataKey

    target = DataKey.__table__
    last = ""
    while True:
        rows = rows_from(last, batch)
        if not rows:
            return
        with to_engine.begin() as conn:
            have = set(conn.execute(sa.select(target.c.id).where(target.c.id.in_([r.id for r in rows]))).scalars())
            new = [dict(id=r.id, owner_id=r.owner_id, kek_id=r.kek_id, wrapped=bytes(r.wrapped),
                        created_at=_aware(r.created_at)) for r in rows if r.id not in have]
            if new:
                conn.execute(target.insert(), new)
        last = rows[-1].id


def upgrade():
    with op.batch_alter_table("citizens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone_bidx_b", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("name_building_bidx", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_citizens_phone_bidx_b"), ["phone_bidx_b"], unique=False)
        batch_op.create_index(batch_op.f("ix_citizens_name_building_bidx"), ["name_building_bidx"], unique=False)

    op.create_table(
        "blind_index_state",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("key_a", sa.String(length=16), nullable=True),
        sa.Column("key_b", sa.String(length=16), nullable=True),
        sa.Column("read_slot", sa.String(length=1), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("backfill_slot", sa.String(length=1), nullable=True),
        sa.Column("backfill_total", sa.Integer(), nullable=False),
        sa.Column("backfill_done", sa.Integer(), nullable=False),
        sa.Column("backfill_cursor", sa.String(length=36), nullable=True),
        sa.Column("backfill_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("backfill_finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_blind_index_state")),
    )
    op.create_table(
        "destruction_records",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("citizen_id", sa.String(length=36), nullable=False),
        sa.Column("categories", sa.String(length=300), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("actor_role", sa.String(length=20), nullable=False),
        sa.Column("key_destroyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_destruction_records")),
    )
    with op.batch_alter_table("destruction_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_destruction_records_citizen_id"), ["citizen_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_destruction_records_at"), ["at"], unique=False)

    if not context.is_offline_mode():
        bind = op.get_bind()
        ks = _keystore_engine()

        def rows_from(last, n):
            return bind.execute(sa.select(_data_keys).where(_data_keys.c.id > last)
                                .order_by(_data_keys.c.id).limit(n)).all()

        _copy(rows_from, ks)
    with op.batch_alter_table("data_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_keys_kek_id"))
    op.drop_table("data_keys")


def downgrade():
    op.create_table(
        "data_keys",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner_id", sa.String(length=36), nullable=False),
        sa.Column("kek_id", sa.String(length=32), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_keys")),
        sa.UniqueConstraint("owner_id", name=op.f("uq_data_keys_owner_id")),
    )
    with op.batch_alter_table("data_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_data_keys_kek_id"), ["kek_id"], unique=False)
    if not context.is_offline_mode():
        from crm.security.models import DataKey

        bind = op.get_bind()
        ks = _keystore_engine()
        src = DataKey.__table__
        last = ""
        while True:
            with ks.connect() as conn:
                rows = conn.execute(sa.select(src).where(src.c.id > last).order_by(src.c.id).limit(5000)).all()
            if not rows:
                break
            bind.execute(_data_keys.insert(), [dict(id=r.id, owner_id=r.owner_id, kek_id=r.kek_id,
                                                    wrapped=bytes(r.wrapped), created_at=r.created_at) for r in rows])
            last = rows[-1].id
    with op.batch_alter_table("destruction_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_destruction_records_at"))
        batch_op.drop_index(batch_op.f("ix_destruction_records_citizen_id"))
    op.drop_table("destruction_records")
    op.drop_table("blind_index_state")
    with op.batch_alter_table("citizens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_citizens_name_building_bidx"))
        batch_op.drop_index(batch_op.f("ix_citizens_phone_bidx_b"))
        batch_op.drop_column("name_building_bidx")
        batch_op.drop_column("phone_bidx_b")
