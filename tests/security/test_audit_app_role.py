"""Issue 13: the log's tamper evidence holds against the application's own database role.

On PostgreSQL the application connects as a role that owns no table (``crm db grant-app-role``;
migrations run as the owner through ``CRM_MIGRATIONS_DATABASE_URL``). Such a role works normally,
but cannot switch off or drop the access log's append-only trigger, nor change or delete entries."""
from __future__ import annotations

import secrets

import pytest
import sqlalchemy as sa

from crm.db import db
from crm.security import audit
from crm.security.models import AccessLogEntry

TAMPERING = (
    "ALTER TABLE access_log DISABLE TRIGGER access_log_append_only",
    "ALTER TABLE access_log DISABLE TRIGGER ALL",
    "DROP TRIGGER access_log_append_only ON access_log",
    "DROP FUNCTION crm_access_log_immutable() CASCADE",
    "UPDATE access_log SET detail = 'rewritten'",
    "DELETE FROM access_log",
    "TRUNCATE access_log",
    "ALTER TABLE access_log OWNER TO CURRENT_USER",
)


@pytest.fixture()
def app_role(ctx):
    """A PostgreSQL role of this test only (unique name), dropped with its privileges afterwards."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("database roles exist on PostgreSQL only; on SQLite the hash chain and the signed "
                    "checkpoints are the log's protection (tests/security/test_audit_tamper.py)")
    name = f"crm_app_test_{secrets.token_hex(4)}"
    yield name
    db.session.remove()
    with db.engine.begin() as conn:
        if conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": name}).first():
            conn.execute(sa.text(f'DROP OWNED BY "{name}"'))  # its privileges and default privileges here
            conn.execute(sa.text(f'DROP ROLE "{name}"'))


def _app_as(app_config, url, **extra):
    from crm import create_app

    return create_app({**app_config, "SQLALCHEMY_DATABASE_URI": url, "WTF_CSRF_ENABLED": False, **extra})


def _dispose(app) -> None:
    with app.app_context():
        db.session.remove()
        for engine in db.engines.values():
            engine.dispose()


def test_the_app_role_works_but_cannot_touch_the_log(ctx, app_config, runner, app_role, make_user):
    audit.record("test.before", detail="original", actor=audit.system_actor("t"))
    db.session.commit()
    result = runner("db", "grant-app-role", app_role)
    assert result.exit_code == 0, result.output
    assert "REVOKE UPDATE, DELETE, TRUNCATE ON" in result.output and "access_log" in result.output
    owner_url = db.engine.url.render_as_string(hide_password=False)
    role_url = db.engine.url.set(username=app_role, password=None).render_as_string(hide_password=False)
    app2 = _app_as(app_config, role_url)
    try:
        with app2.app_context():
            assert db.session.execute(sa.text("SELECT current_user")).scalar() == app_role
            # the application still works as that role: a staff account, entries chained by
            # crm_audit_append (INSERT into the log, UPDATE of the head row), reads, verification
            user = make_user("operator", f"op_{app_role[-8:]}")
            audit.record("test.as_app_role", actor=audit.Actor(user.id, user.username, user.role))
            db.session.commit()
            assert audit.verify()[1] is None
            assert db.session.execute(sa.select(sa.func.count()).select_from(AccessLogEntry)
                                      .where(AccessLogEntry.action == "test.as_app_role")).scalar() == 1
            db.session.commit()
            refused = []
            for sql in TAMPERING:
                try:
                    with db.engine.begin() as conn:
                        conn.execute(sa.text(sql))
                except sa.exc.DBAPIError as exc:
                    refused.append(sql)
                    assert "permission denied" in str(exc.orig) or "must be owner" in str(exc.orig), (sql, exc.orig)
            assert refused == list(TAMPERING)
    finally:
        _dispose(app2)
    # seen by the owner: nothing changed, the trigger is on, the chain holds
    db.session.expire_all()
    assert db.session.execute(sa.text("SELECT tgenabled FROM pg_trigger WHERE tgname = 'access_log_append_only'")
                              ).scalar() == "O"
    details = db.session.execute(sa.select(AccessLogEntry.detail).where(AccessLogEntry.action == "test.before")).scalars()
    assert list(details) == ["original"]
    assert audit.verify()[1] is None

    # migrations and the grant run as the owner through CRM_MIGRATIONS_DATABASE_URL ...
    app3 = _app_as(app_config, role_url, CRM_MIGRATIONS_DATABASE_URL=owner_url)
    try:
        result = runner("db", "grant-app-role", app_role, app=app3)
        assert result.exit_code == 0, result.output
        assert runner("db", "upgrade", app=app3).exit_code == 0
    finally:
        _dispose(app3)
    # ... and without it through the application's own URL: the app role cannot grant itself anything
    app4 = _app_as(app_config, role_url)
    try:
        result = runner("db", "grant-app-role", app_role, app=app4)
        assert result.exit_code != 0 and "the role this command is connected as" in result.output, result.output
    finally:
        _dispose(app4)
    # `crm db upgrade` really connects through CRM_MIGRATIONS_DATABASE_URL: a role that does not exist fails
    nobody = db.engine.url.set(username=f"{app_role}_nobody", password=None).render_as_string(hide_password=False)
    app5 = _app_as(app_config, owner_url, CRM_MIGRATIONS_DATABASE_URL=nobody)
    try:
        assert runner("db", "upgrade", app=app5).exit_code != 0
    finally:
        _dispose(app5)


def test_grant_app_role_refuses_the_owner_and_superusers(ctx, runner, app_role):
    me = db.session.execute(sa.text("SELECT current_user")).scalar()
    db.session.commit()
    result = runner("db", "grant-app-role", me)
    assert result.exit_code != 0 and "the role this command is connected as" in result.output, result.output
    result = runner("db", "grant-app-role", "Robert'); DROP TABLE access_log; --")
    assert result.exit_code != 0 and "lower-case letters" in result.output
    result = runner("db", "grant-app-role", app_role, "--no-create")
    assert result.exit_code != 0 and "does not exist" in result.output
    with db.engine.begin() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{app_role}" SUPERUSER'))
    result = runner("db", "grant-app-role", app_role)
    assert result.exit_code != 0 and "superuser" in result.output, result.output


def test_grant_app_role_on_sqlite_says_why_not(ctx, runner):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the SQLite message; PostgreSQL is tested above")
    result = runner("db", "grant-app-role", "crm_app")
    assert result.exit_code != 0 and "PostgreSQL only" in result.output


@pytest.mark.parametrize("table", ["access_log", "consent_events", "destruction_acts"])
def test_the_append_only_tables_refuse_truncate_even_to_their_owner(ctx, table):
    """The row triggers never fire for TRUNCATE, which empties a table without touching a row: a
    statement-level trigger refuses it (migration 0035), the owner's connection included."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    from crm.consent import services as consent
    from tests.factories import CitizenFactory

    consent.record(CitizenFactory(), "sms_notifications")
    audit.record("test.before_truncate", actor=audit.system_actor("t"))
    db.session.commit()
    before = db.session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
    db.session.commit()  # TRUNCATE waits for every lock on the table, the session's read included
    with pytest.raises(sa.exc.DBAPIError, match="append-only: TRUNCATE refused"):
        with db.engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {table} CASCADE"))
    assert db.session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == before
