"""Issue 13 re-audit: an application connected to PostgreSQL as a superuser or as the owner of the
append-only tables could switch their triggers off. It says so: a warning in the log at start-up and
``checks.database_role`` on ``/readyz`` (status still 200: a deployment's warning, not an outage); a
role made by ``crm db grant-app-role`` is ``ok``."""
from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from crm.db import db
from tests.security.test_audit_app_role import _app_as, _dispose, app_role  # noqa: F401  (fixture)


def test_sqlite_has_no_roles_to_warn_about(ctx, client):
    if db.engine.dialect.name == "postgresql":
        pytest.skip("SQLite only")
    body = client.get("/readyz").get_json()
    assert body["checks"]["database_role"] == "ok"


def test_a_superuser_or_an_owner_is_warned_about_and_an_app_role_is_not(ctx, app_config, runner, app_role, caplog):
    is_super = db.session.execute(sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar()
    if not is_super:
        pytest.skip("the test database's role is no superuser here")
    owner_url = db.engine.url.render_as_string(hide_password=False)
    with caplog.at_level(logging.WARNING, logger="crm.health"):
        app = _app_as(app_config, owner_url)
    try:
        warned = [r.getMessage() for r in caplog.records if r.name == "crm.health"]
        assert len(warned) == 1 and "superuser" in warned[0] and "grant-app-role" in warned[0]
        resp = app.test_client().get("/readyz")
        checks = resp.get_json()["checks"]
        assert checks["database_role"].startswith("warning: ") and "superuser" in checks["database_role"]
        assert resp.status_code == (200 if checks["redis"] == "ok" and checks["keys"] == "ok" else 503)
    finally:
        _dispose(app)

    # a role that is no superuser but may act as the tables' owner (a member of the owner's role)
    db.session.commit()
    with db.engine.begin() as conn:
        owner = conn.execute(sa.text("SELECT tableowner FROM pg_tables WHERE tablename = 'access_log' "
                                     "AND schemaname = current_schema()")).scalar()
        conn.execute(sa.text(f'CREATE ROLE "{app_role}" LOGIN'))
        conn.execute(sa.text(f'GRANT "{owner}" TO "{app_role}"'))
    member_url = db.engine.url.set(username=app_role, password=None).render_as_string(hide_password=False)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="crm.health"):
        app = _app_as(app_config, member_url)
    try:
        warned = [r.getMessage() for r in caplog.records if r.name == "crm.health"]
        assert len(warned) == 1 and "access_log, consent_events" in warned[0]
        assert "access_log" in app.test_client().get("/readyz").get_json()["checks"]["database_role"]
    finally:
        _dispose(app)
    with db.engine.begin() as conn:
        conn.execute(sa.text(f'REVOKE "{owner}" FROM "{app_role}"'))

    # the application's own role (crm db grant-app-role): no warning, ok
    result = runner("db", "grant-app-role", app_role)
    assert result.exit_code == 0, result.output
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="crm.health"):
        app = _app_as(app_config, member_url)
    try:
        assert not [r for r in caplog.records if r.name == "crm.health"]
        assert app.test_client().get("/readyz").get_json()["checks"]["database_role"] == "ok"
    finally:
        _dispose(app)
