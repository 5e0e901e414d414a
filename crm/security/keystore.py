"""The key store: wrapped data keys (DEKs) in a database separate from the main one.

Why separate: erasing a citizen deletes their DEK. The main database's backups keep the citizen's
ciphertext for as long as they are kept; they stay unreadable because the DEK is gone. The key
store has its own, short backup policy (at most 30 days, 152-ФЗ ст. 21 ч. 5), so a deleted DEK
leaves every copy within the legal window.

Where: the SQLAlchemy bind ``keystore`` (``SQLALCHEMY_BINDS``). Default: the SQLite file
``instance/keystore.sqlite3``; ``CRM_KEYSTORE_URL`` (environment or instance config) names another
database, e.g. a separate PostgreSQL database ``crm_keys`` with its own backup job.

Schema: the key store has no Alembic history; its tables (``data_keys``, ``keks``,
``erased_owners``, ``key_rotations``) are created with ``CREATE TABLE IF NOT EXISTS`` semantics
(``metadata.create_all``) by ``crm init``, by migration ``0003_keystore_shredding`` (which also
moves data keys out of the main database) and on first use in each process (:func:`ensure`). A
future change of these tables adds columns the same way, idempotently.

Two databases, one request. A DEK is created while its citizen's row is being written, but in its
**own key-store transaction committed at once**, before the main database commits:

* key store commits, main database fails → an orphan DEK: harmless (it encrypts nothing), listed by
  :func:`orphans` and removable by ``crm keys gc``;
* the reverse order could leave a committed citizen without its DEK: data loss. Never done.

Erasure goes the other way round (main database first, then the key store; see
:mod:`crm.security.shredding`), and is re-run until the DEK is gone.

On SQLite the key store runs in WAL mode with ``synchronous=FULL`` (a DEK is only reported
committed once it is on disk), deferred transactions for reads and ``BEGIN IMMEDIATE`` for writes,
and a 30 s busy timeout, so web processes, workers and a rotation job queue instead of failing.

Data-key reads (:func:`find`, :func:`find_by_owner`, :func:`find_many_by_owner`) are single
statements and need no transaction of their own: they run in autocommit (PostgreSQL: no ``BEGIN``
and ``ROLLBACK`` round trips around the ``SELECT``; SQLite: the statement's own read transaction),
and are retried once on a fresh connection when the pooled one turns out to be dead (a database
restart), which is what a pre-ping would do, without its round trip. The key store's engine has no
``pool_pre_ping``: Flask-SQLAlchemy applies ``SQLALCHEMY_ENGINE_OPTIONS`` to the default engine only.

A KEK rotation reads and updates data keys in batches (:func:`rewrap_scan`, :func:`rewrap_update`):
on SQLite in ``rowid`` order, the order the table stores its rows in (data key ids are random
UUIDs, so id order would read and rewrite its pages at random; a rotation's stored cursor stays a
data key id and is mapped to its ``rowid`` when a run starts, so a ``VACUUM`` between runs, which
may renumber rowids, is harmless, and keys a first pass misses are found by the straggler passes);
on PostgreSQL in id order with one ``UPDATE … FROM unnest(…)`` per batch.
"""
from __future__ import annotations

import threading
from datetime import timedelta
from typing import Iterable, NamedTuple

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from crm.db import db, utcnow
from crm.security.keyring import KeyError_, kek_check_value
from crm.security.models import DataKey, ErasedOwner, KekRecord, KeyRotation

BIND = "keystore"
_LOCK = threading.Lock()
_dk = DataKey.__table__
_keks = KekRecord.__table__
_erased = ErasedOwner.__table__


class DekRow(NamedTuple):
    id: str
    owner_id: str
    kek_id: str
    wrapped: bytes


def init_app(app) -> None:
    """Install the key store's SQLite settings on its engine (no database access)."""
    with app.app_context():
        eng = db.engines[BIND]
        if eng.dialect.name == "sqlite":
            _sqlite_setup(eng)


def _sqlite_setup(engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def on_begin(conn):
        opts = conn.get_execution_options()
        if opts.get("crm_autocommit"):
            return  # one-statement reads (_read): the statement's own read transaction
        conn.exec_driver_sql("BEGIN IMMEDIATE" if opts.get("crm_write") else "BEGIN")


def engine(app=None) -> sa.Engine:
    """The key store's engine (schema ensured)."""
    app = app or current_app
    ensure(app)
    return db.engines[BIND]


def _raw_engine() -> sa.Engine:
    return db.engines[BIND]


def writer(app=None):
    """A connection context for a key-store write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
    return engine(app).execution_options(crm_write=True).begin()


def create_schema(app=None) -> None:
    """Create the key store's tables if absent (idempotent; safe when several processes race)."""
    app = app or current_app
    eng = db.engines[BIND]
    if eng.dialect.name == "sqlite" and eng.url.database:
        import os

        path = eng.url.database
        if not os.path.exists(path):  # the key store's file readable by its owner only
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for attempt in range(3):
        try:
            db.metadatas[BIND].create_all(eng)
            return
        except (OperationalError, ProgrammingError, IntegrityError):
            if attempt == 2:
                raise  # another process created the same table between check and create: retry


def ensure(app=None) -> None:
    """Once per process and app: create the schema if needed and check the keyring against the
    key store's KEK records. Raises :class:`KeyError_` naming a KEK whose file does not match its
    record (a wrong key) or that is recorded, not retired, and absent from the keyring (a missing
    key). New KEKs of the keyring are recorded."""
    app = app or current_app
    if app.extensions.get("crm_keystore_ready"):
        return
    with _LOCK:
        if app.extensions.get("crm_keystore_ready"):
            return
        create_schema(app)
        # deferred: crm.security.crypto imports this module (the keyring reads the key store)
        from crm.security.crypto import keyring

        check_keks(keyring())
        app.extensions["crm_keystore_ready"] = True


def check_keks(ring) -> None:
    """Compare the keyring with the key store's KEK records (see :func:`ensure`)."""
    eng = _raw_engine()
    with eng.connect() as conn:
        records = {r.id: r for r in conn.execute(sa.select(_keks))}
    for kid, kek in ring.keks.items():
        rec = records.get(kid)
        if rec is not None and rec.check_value != kek_check_value(kek):
            raise KeyError_(f"key-encryption key {kid!r} does not match the key store's record: "
                            "wrong key file or variable (data keys wrapped by it would not unwrap)")
    for kid, rec in records.items():
        if rec.retired_at is None and kid not in ring.keks:
            raise KeyError_(f"key-encryption key {kid!r} is used by the key store but missing from the keyring "
                            f"(instance/keys/kek-{kid}.key or CRM_KEK_{kid.upper()})")
    new = [k for k in ring.keks if k not in records]
    if new:
        register_keks(ring, new)


def register_keks(ring, ids: Iterable[str]) -> None:
    """Record KEK ids and check values (idempotent)."""
    with _raw_engine().execution_options(crm_write=True).begin() as conn:
        known = set(conn.execute(sa.select(_keks.c.id)).scalars())
        for kid in ids:
            if kid not in known:
                conn.execute(_keks.insert().values(id=kid, check_value=kek_check_value(ring.kek(kid)),
                                                   created_at=utcnow()))


def mark_retired(kid: str) -> None:
    with writer() as conn:
        conn.execute(_keks.update().where(_keks.c.id == kid).values(retired_at=utcnow()))


# --- data keys ---------------------------------------------------------------------------------------

def _row(r) -> DekRow:
    return DekRow(r.id, r.owner_id, r.kek_id, bytes(r.wrapped))


def _read(fn):
    """``fn(conn)`` on a key-store connection without a transaction of its own (see module doc),
    for reads only: retried once when the connection was found dead (SQLAlchemy then discards the
    pool's older connections, so the retry connects afresh)."""
    eng = engine()
    opts = {"isolation_level": "AUTOCOMMIT"} if eng.dialect.name != "sqlite" else {"crm_autocommit": True}
    for attempt in (1, 2):
        try:
            with eng.connect() as conn:
                return fn(conn.execution_options(**opts))
        except sa.exc.DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise


_DK_COLS = (_dk.c.id, _dk.c.owner_id, _dk.c.kek_id, _dk.c.wrapped)


def find_by_owner(owner_id: str) -> DekRow | None:
    r = _read(lambda conn: conn.execute(sa.select(*_DK_COLS).where(_dk.c.owner_id == owner_id)).first())
    return _row(r) if r else None


def find(dek_id: str) -> DekRow | None:
    r = _read(lambda conn: conn.execute(sa.select(*_DK_COLS).where(_dk.c.id == dek_id)).first())
    return _row(r) if r else None


def find_many_by_owner(owner_ids: list[str]) -> list[DekRow]:
    """The data keys of ``owner_ids`` (those that have one), 500 owners per statement."""
    owner_ids = list(owner_ids)

    def run(conn):
        out: list[DekRow] = []
        for i in range(0, len(owner_ids), 500):
            out += [_row(r) for r in conn.execute(sa.select(*_DK_COLS).where(_dk.c.owner_id.in_(owner_ids[i:i + 500])))]
        return out

    return _read(run) if owner_ids else []


def insert(dek_id: str, owner_id: str, kek_id: str, wrapped: bytes) -> bool:
    """Store a new wrapped DEK and commit. Returns False when the owner already has one (another
    process was first). Raises :class:`~crm.security.crypto.KeyErased` for an erased owner."""
    # deferred: crm.security.crypto imports this module (the keyring reads the key store)
    from crm.security.crypto import KeyErased

    try:
        with writer() as conn:
            if conn.execute(sa.select(_erased.c.owner_id).where(_erased.c.owner_id == owner_id)).first():
                raise KeyErased(f"{owner_id} was erased: no new data key is made for it")
            conn.execute(_dk.insert().values(id=dek_id, owner_id=owner_id, kek_id=kek_id, wrapped=wrapped,
                                             created_at=utcnow()))
        return True
    except IntegrityError:
        return False


def insert_many(rows: list[tuple[str, str, str, bytes]]) -> None:
    """Store new wrapped DEKs ``(dek_id, owner_id, kek_id, wrapped)`` for fresh owner ids in one
    committed transaction (:func:`crm.security.crypto.reserve_owner_id`)."""
    now = utcnow()
    with writer() as conn:
        conn.execute(_dk.insert(), [dict(id=d, owner_id=o, kek_id=k, wrapped=w, created_at=now) for d, o, k, w in rows])


def delete_owner(owner_id: str) -> int:
    """Delete the owner's DEK and leave a tombstone, in one committed transaction. Returns the
    number of data keys deleted (0 when already gone)."""
    with writer() as conn:
        n = conn.execute(_dk.delete().where(_dk.c.owner_id == owner_id)).rowcount
        if not conn.execute(sa.select(_erased.c.owner_id).where(_erased.c.owner_id == owner_id)).first():
            conn.execute(_erased.insert().values(owner_id=owner_id, erased_at=utcnow()))
    return n


# --- KEK rotation: batches in physical order ---------------------------------------------------------

class ScanRow(NamedTuple):
    id: str
    owner_id: str
    kek_id: str
    wrapped: bytes
    pos: int | str  # SQLite: rowid; otherwise the id


def _sqlite() -> bool:
    return _raw_engine().dialect.name == "sqlite"


def scan_start(cursor: str | None) -> int | str:
    """The scan position after data key ``cursor`` (a rotation's stored progress) for
    :func:`rewrap_scan`: its ``rowid`` on SQLite (0, i.e. from the start, when that key has been
    deleted meanwhile: the rows already done are skipped by their KEK), else the id itself."""
    if not _sqlite():
        return cursor or ""
    if not cursor:
        return 0
    with engine().connect() as conn:
        pos = conn.execute(sa.text("SELECT rowid FROM data_keys WHERE id = :id"), {"id": cursor}).scalar()
    return pos or 0


def rewrap_scan(target: str, after: int | str, limit: int) -> list[ScanRow]:
    """Up to ``limit`` data keys not under KEK ``target``, after position ``after``, in the order
    their rows are stored: by ``rowid`` on SQLite (the table's own order; id order would read and
    rewrite its pages at random), by id elsewhere (keyset pagination on the primary key)."""
    with engine().connect() as conn:
        if _sqlite():
            rows = conn.execute(sa.text("SELECT rowid, id, owner_id, kek_id, wrapped FROM data_keys "
                                        "WHERE rowid > :pos AND kek_id != :target ORDER BY rowid LIMIT :n"),
                                {"pos": after, "target": target, "n": limit}).all()
            return [ScanRow(r[1], r[2], r[3], bytes(r[4]), r[0]) for r in rows]
        rows = conn.execute(sa.select(*_DK_COLS).where(_dk.c.kek_id != target, _dk.c.id > after)
                            .order_by(_dk.c.id).limit(limit)).all()
    return [ScanRow(r.id, r.owner_id, r.kek_id, bytes(r.wrapped), r.id) for r in rows]


def stragglers(target: str, limit: int) -> list[ScanRow]:
    """Up to ``limit`` data keys under a KEK other than ``target`` (through the ``kek_id`` index):
    keys made by processes that had not yet loaded the new active KEK."""
    others = [r.id for r in kek_records() if r.id != target]
    if not others:
        return []
    with engine().connect() as conn:
        if _sqlite():
            rows = conn.execute(sa.select(sa.literal_column("rowid"), *_DK_COLS).where(_dk.c.kek_id.in_(others))
                                .order_by(sa.literal_column("rowid")).limit(limit)).all()
            return [ScanRow(r[1], r[2], r[3], bytes(r[4]), r[0]) for r in rows]
        rows = conn.execute(sa.select(*_DK_COLS).where(_dk.c.kek_id.in_(others)).order_by(_dk.c.id).limit(limit)).all()
    return [ScanRow(r.id, r.owner_id, r.kek_id, bytes(r.wrapped), r.id) for r in rows]


def rewrap_update(conn, target: str, rows: list[ScanRow], wrapped: list[bytes]) -> int:
    """Store ``wrapped[i]`` (the same DEK, now wrapped by ``target``) for ``rows[i]`` inside the
    caller's write transaction ``conn``, only where the row still has the id and KEK it was read
    with (a key deleted or re-wrapped meanwhile is left alone). Returns the number of rows updated.

    ``rows`` come from :func:`rewrap_scan` or :func:`stragglers`, in their order. SQLite: one
    prepared ``UPDATE … WHERE rowid = ? AND id = ? AND kek_id = ?`` run for every row (rows in
    ``rowid`` order touch neighbouring pages). PostgreSQL: one ``UPDATE … FROM unnest(…)`` for the
    whole batch, bounded by the batch's first and last id (the rows are in the database's id order)
    so the planner joins through the primary key instead of hashing the whole table."""
    if not rows:
        return 0
    dialect = conn.dialect.name
    if dialect == "sqlite":
        cur = conn.exec_driver_sql(
            "UPDATE data_keys SET kek_id = ?, wrapped = ? WHERE rowid = ? AND id = ? AND kek_id = ?",
            [(target, w, r.pos, r.id, r.kek_id) for r, w in zip(rows, wrapped)])
        return max(cur.rowcount, 0)
    if dialect == "postgresql":
        ids = [r.id for r in rows]
        return conn.execute(sa.text(
            "UPDATE data_keys AS d SET kek_id = :target, wrapped = v.wrapped "
            "FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:olds AS VARCHAR[]), CAST(:wrapped AS BYTEA[])) "
            "AS v(id, old_kek, wrapped) "
            "WHERE d.id = v.id AND d.kek_id = v.old_kek AND d.id BETWEEN :lo AND :hi"),
            {"target": target, "ids": ids, "olds": [r.kek_id for r in rows], "wrapped": list(wrapped),
             "lo": ids[0], "hi": ids[-1]}).rowcount
    stmt = (_dk.update().where(_dk.c.id == sa.bindparam("b_id"), _dk.c.kek_id == sa.bindparam("b_old"))
            .values(kek_id=target, wrapped=sa.bindparam("b_wrapped")))
    params = [{"b_id": r.id, "b_old": r.kek_id, "b_wrapped": w} for r, w in zip(rows, wrapped)]
    return max(conn.execute(stmt, params).rowcount, 0)


def counts_by_kek() -> dict[str, int]:
    """``{kek_id: number of data keys wrapped by it}``."""
    with engine().connect() as conn:
        return dict(conn.execute(sa.select(_dk.c.kek_id, sa.func.count()).group_by(_dk.c.kek_id)).all())


def count_for_kek(kid: str) -> int:
    with engine().connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(_dk).where(_dk.c.kek_id == kid)).scalar_one()


def kek_records() -> list:
    with engine().connect() as conn:
        return list(conn.execute(sa.select(_keks).order_by(_keks.c.created_at)))


def orphans(owner_exists, older_than: timedelta = timedelta(hours=1), batch: int = 1000) -> list[DekRow]:
    """Data keys older than ``older_than`` whose owner ``owner_exists(ids) -> set`` does not know:
    left by a main-database commit that failed after the key store's (harmless; see module doc)."""
    cutoff = utcnow() - older_than
    out: list[DekRow] = []
    last = ""
    with engine().connect() as conn:
        while True:
            rows = [_row(r) for r in conn.execute(
                sa.select(_dk.c.id, _dk.c.owner_id, _dk.c.kek_id, _dk.c.wrapped)
                .where(_dk.c.owner_id > last, _dk.c.created_at < cutoff).order_by(_dk.c.owner_id).limit(batch))]
            if not rows:
                return out
            known = owner_exists([r.owner_id for r in rows])
            out += [r for r in rows if r.owner_id not in known]
            last = rows[-1].owner_id


def delete_orphans(rows: list[DekRow]) -> int:
    """Delete the given orphan data keys (no tombstone: their owners never existed)."""
    with writer() as conn:
        return sum(conn.execute(_dk.delete().where(_dk.c.id == r.id, _dk.c.owner_id == r.owner_id)).rowcount
                   for r in rows)


def rotations(limit: int = 10) -> list:
    with engine().connect() as conn:
        return list(conn.execute(sa.select(KeyRotation.__table__).order_by(KeyRotation.__table__.c.id.desc())
                                 .limit(limit)))


def status() -> dict:
    """``{"url", "keks": [{id, created_at, retired_at, data_keys}], "rotations": [...]}`` for
    ``crm keys status`` (no key material)."""
    counts = counts_by_kek()
    return {"url": _raw_engine().url.render_as_string(hide_password=True),
            "keks": [{"id": r.id, "created_at": r.created_at, "retired_at": r.retired_at,
                      "data_keys": counts.get(r.id, 0)} for r in kek_records()],
            "unknown_keks": {k: n for k, n in counts.items() if k not in {r.id for r in kek_records()}},
            "rotations": [dict(r._mapping) for r in rotations()]}
