"""Database base class, naming convention and UTC time helpers.

SQLite hands ``DateTime(timezone=True)`` back naive: :class:`UTCDateTime` stores UTC and attaches
the zone on read, so every datetime the application sees is aware (pitfalls.md).
"""
from __future__ import annotations

import functools
import os
import re
import uuid
from datetime import datetime, timezone

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import DateTime, MetaData, String, TypeDecorator
from sqlalchemy.orm import DeclarativeBase
from werkzeug.routing import IntegerConverter

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def atomic(func):
    """Decorator for a service function that commits its own transaction: when it raises, the session
    is rolled back before the exception goes on, so a caller that catches the error (a view sending a
    form back with a message) finds nothing half-written and never calls ``rollback()`` itself."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except Exception:
            db.session.rollback()
            raise
    return wrapper


def new_id() -> str:
    """A random UUID4 string: primary keys of rows that hold ciphertext are known before insert,
    because the associated data of each ciphertext names its row."""
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator):
    """A timezone-aware datetime stored as UTC on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


#: The range of an SQL ``INTEGER`` (PostgreSQL refuses anything beyond with "integer out of range",
#: which reached users as a 500). Ids in URLs (:class:`IdConverter`) and integer fields of the API's
#: schemas (crm.api.schemas.Schema) are held to it before any query runs.
INT_MIN, INT_MAX = -2**31, 2**31 - 1


class IdConverter(IntegerConverter):
    """The ``<int:...>`` URL converter, bounded to 0…:data:`INT_MAX`: a larger number does not match
    the route (404) instead of reaching the database. Registered as ``int`` by the app factory."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = INT_MAX,
                 signed: bool = False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def bounded_int(raw, *, low: int = INT_MIN, high: int = INT_MAX) -> int | None:
    """``raw`` (a form or query value) as an int when it is an optional minus and ASCII digits within
    ``low`` … ``high`` (default SQL ``INTEGER``), else None. ``str.isdigit`` alone lets «²» and
    «١٢» through to ``int()`` and numbers past the column's range through to the database (a 500)."""
    text = str(raw or "").strip()
    digits = text[1:] if text.startswith("-") else text
    if not digits or len(digits) > 19 or not (digits.isascii() and digits.isdigit()):
        return None
    value = int(text)
    return value if low <= value <= high else None


UUID_LEN = 36
UUIDStr = String(UUID_LEN)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


def _sqlite_file(url) -> str | None:
    """The file of a SQLite database URL, or None (another database, in memory, or a ``file:`` URI)."""
    path = url.database if url.get_backend_name() == "sqlite" else None
    return path if path and path != ":memory:" and not path.startswith("file:") else None


def database_missing() -> bool:
    """True when the app's database is a SQLite file that does not exist (a fresh instance before ``crm
    db upgrade``, or ``crm transcribe`` on a machine without the instance's database): there is nothing
    to read, and connecting would only create an empty file. False for any other database (a server
    that cannot be reached fails when used). Needs an application context."""
    path = _sqlite_file(db.engine.url)
    return path is not None and not os.path.exists(path)


def _sqlite_setup(engine) -> None:
    """SQLite: WAL, a 30 s busy timeout, foreign keys, and ``BEGIN IMMEDIATE`` for every transaction.

    A deferred SQLite transaction that reads and then writes can fail at once with "database is
    locked" when another process wrote meanwhile; taking the write lock at BEGIN makes concurrent
    web and worker processes queue instead (the access-log chain relies on it). Keep transactions
    short: never hold one open across slow work such as a transcription."""
    import os
    import stat

    from sqlalchemy import event

    path = _sqlite_file(engine.url)
    if path:
        @event.listens_for(engine, "do_connect")
        def before_connect(_dialect, _conn_rec, _cargs, _cparams):
            # The database file (SQLite gives its -wal and -shm files the same mode) is created 0600,
            # and an older one readable by others is tightened: it holds ciphertext, but also the
            # access log and everything that is not personal data. Done at the first connection, not
            # when the engine is made: a command that reads no database (``crm transcribe``, ``crm
            # --help``) leaves no empty file behind in a fresh instance.
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except FileExistsError:
                st = os.stat(path)
                if st.st_mode & 0o077 and st.st_uid == os.getuid():
                    os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)
            except FileNotFoundError:
                pass  # its folder is missing: SQLite's own error on connect says so

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def ping_when_idle(engine, idle_s: float) -> None:
    """Check a pooled connection with a ``SELECT 1`` at checkout only when it sat idle in the pool
    for more than ``idle_s`` seconds (a server restart or a firewall's idle timeout shows there);
    a dead one is replaced before the caller sees it.

    ``pool_pre_ping`` does the same on *every* checkout, and a Flask-SQLAlchemy session checks a
    connection out per transaction: one extra round trip for each of them, which on PostgreSQL
    was ~10 % of a short transaction's time (bench/audit.py). A connection that dies while busy,
    or within ``idle_s`` of its last use, fails that one transaction with a disconnect error and
    the pool drops it (SQLAlchemy's optimistic disconnect handling). ``idle_s`` 0 pings always.
    Uses the pool's documented ``checkout`` hook: raising ``DisconnectionError`` makes it retry
    with a fresh connection (SQLAlchemy, "Dealing with Disconnects")."""
    import time

    from sqlalchemy import event, exc

    @event.listens_for(engine, "checkin")
    def on_checkin(_dbapi_conn, record):
        if record is not None:
            record.info["crm_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def on_checkout(dbapi_conn, record, _proxy):
        since = record.info.get("crm_idle_since")
        if since is None or time.monotonic() - since <= idle_s:
            return  # fresh from connect, or used a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
            if engine.dialect.name == "postgresql":
                dbapi_conn.rollback()  # the ping began a transaction (psycopg is not in autocommit)
        except Exception as err:
            raise exc.DisconnectionError(f"pooled connection is dead: {err}") from err
        if alive is False:
            raise exc.DisconnectionError("pooled connection failed its ping")


def init_engine_events(app) -> None:
    """Install per-dialect engine settings once the engine exists."""
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":
            _sqlite_setup(engine)
        else:
            ping_when_idle(engine, float(app.config["CRM_DB_PING_IDLE_S"]))


# --- the application's database role (PostgreSQL) ------------------------------------------------------

def migrations_url(app) -> str:
    """The URL migrations run with: ``CRM_MIGRATIONS_DATABASE_URL`` (the role that owns the tables),
    else the application's own ``SQLALCHEMY_DATABASE_URI`` (one role for both, as on SQLite)."""
    return app.config["CRM_MIGRATIONS_DATABASE_URL"] or app.config["SQLALCHEMY_DATABASE_URI"]


def migrations_engine(app):
    """An engine connected as the tables' owner (:func:`migrations_url`), without a pool, for
    migrations and :func:`grant_app_role`; the caller disposes of it."""
    return sa.create_engine(migrations_url(app), poolclass=sa.pool.NullPool)


_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
#: Tables the application role may read and add to but never change: the access log (its trigger
#: refuses changes too; a role without the privilege cannot even try, nor switch the trigger off,
#: which only the owner can) and Alembic's version row.
APPEND_ONLY_TABLES = ("access_log",)
READ_ONLY_TABLES = ("alembic_version",)


def grant_app_role(conn, role: str, *, create: bool = True) -> list[str]:
    """Give PostgreSQL role ``role`` what the application needs and nothing more, on the database and
    schema of ``conn`` (a connection as the tables' owner, :func:`migrations_engine`): data access
    (SELECT, INSERT, UPDATE, DELETE) on every table, INSERT and SELECT only on the access log,
    SELECT only on ``alembic_version``, the sequences and functions, and the same on tables later
    migrations create (default privileges of the owner). No ownership, no DDL: such a role cannot
    ``ALTER TABLE … DISABLE TRIGGER`` or drop the append-only trigger of the access log. The role is
    created (``LOGIN``, no password: set one with ``ALTER ROLE … PASSWORD``) when missing and
    ``create``. Returns the statements run. Raises ValueError for a bad name, a superuser, the
    owner itself, a role owning tables here, or a database other than PostgreSQL."""
    if conn.dialect.name != "postgresql":
        raise ValueError("database roles exist on PostgreSQL only (SQLite has none: there the hash chain and the "
                         "signed checkpoints are the log's protection)")
    if not _ROLE_NAME.fullmatch(role):
        raise ValueError(f"role name {role!r}: lower-case letters, digits and _ only, at most 63 characters")
    me, database, schema = conn.execute(sa.text("SELECT current_user, current_database(), current_schema()")).one()
    if role == me:
        raise ValueError(f"{role!r} is the role this command is connected as (the tables' owner): the application "
                         "needs a role of its own; set CRM_MIGRATIONS_DATABASE_URL to the owner's URL")
    row = conn.execute(sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
    done = []
    if row is None:
        if not create:
            raise ValueError(f"role {role!r} does not exist")
        done.append(f'CREATE ROLE "{role}" LOGIN')
    elif row[0]:
        raise ValueError(f"role {role!r} is a superuser: it could switch the access log's trigger off")
    owned = conn.execute(sa.text("SELECT count(*) FROM pg_tables WHERE schemaname = :s AND tableowner = :r"),
                         {"s": schema, "r": role}).scalar()
    if owned:
        raise ValueError(f"role {role!r} owns {owned} tables in schema {schema}: an owner can switch triggers off; "
                         "let the migrations role own them")
    r, s = f'"{role}"', f'"{schema}"'
    done += [f'GRANT CONNECT ON DATABASE "{database}" TO {r}',
             f"GRANT USAGE ON SCHEMA {s} TO {r}",
             f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r}",
             f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {s} TO {r}",
             f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {s} TO {r}",
             f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r}",
             f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {r}",
             f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT EXECUTE ON FUNCTIONS TO {r}"]
    tables = set(conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = :s"), {"s": schema}).scalars())
    done += [f"REVOKE UPDATE, DELETE, TRUNCATE ON {s}.{t} FROM {r}" for t in APPEND_ONLY_TABLES if t in tables]
    done += [f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {s}.{t} FROM {r}" for t in READ_ONLY_TABLES if t in tables]
    for statement in done:
        conn.execute(sa.text(statement))
    return done


def grant_app_role_as_owner(app, role: str, *, create: bool = True) -> list[str]:
    """:func:`grant_app_role` in a transaction of its own, connected as the tables' owner
    (:func:`migrations_engine`). Returns the statements run; raises ValueError with the reason
    (also when the database refuses, e.g. the URL's role may not grant)."""
    engine = migrations_engine(app)
    try:
        with engine.begin() as conn:
            return grant_app_role(conn, role, create=create)
    except sa.exc.DBAPIError as exc:
        raise ValueError(f"the database refused: {exc.orig}") from None
    finally:
        engine.dispose()
