"""``/healthz`` (process up) and ``/readyz`` (database, Redis, key store, model, and the database role).

The append-only triggers of the access log and the consent events hold against the application only
while it connects to PostgreSQL as a role that neither owns those tables (nor may act as their owner)
nor is a superuser: the owner can ``ALTER TABLE … DISABLE TRIGGER``, a superuser anything (README,
"Deploying for real"). :func:`database_role_problem` says when that is not so; the factory logs it
as a warning at start-up (:func:`warn_privileged_role`) and ``/readyz`` shows it as
``checks.database_role`` (a deployment's warning, not an outage: the status stays 200).
"""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from crm.db import db
from crm.jobs import redis_connection
from crm.security.crypto import keyring

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)

#: The tables whose append-only triggers a privileged application role could switch off.
PROTECTED_TABLES = ("access_log", "consent_events")
_ROLE_SQL = text("""
    SELECT current_user, r.rolsuper,
           (SELECT string_agg(t.tablename, ', ' ORDER BY t.tablename) FROM pg_tables t
             WHERE t.schemaname = current_schema() AND t.tablename = ANY(:tables)
               AND pg_has_role(current_user, t.tableowner, 'USAGE'))
      FROM pg_roles r WHERE r.rolname = current_user
""")


def database_role_problem() -> str | None:
    """Why the role the application is connected as could switch the append-only triggers off, or
    None: it is a PostgreSQL superuser, or it owns (or is a member of the role that owns)
    :data:`PROTECTED_TABLES`. None on SQLite (no roles; the hash chain and the signed checkpoints
    protect the log there). Runs one query on the app's session."""
    if db.engine.dialect.name != "postgresql":
        return None
    role, superuser, owned = db.session.execute(_ROLE_SQL, {"tables": list(PROTECTED_TABLES)}).one()
    if superuser:
        return (f"connected as {role}, a superuser: it can switch the append-only triggers off; connect as a role "
                f"made by `crm db grant-app-role`")
    if owned:
        return (f"connected as {role}, which owns {owned}: it can switch their append-only triggers off; run "
                f"migrations as the owner (CRM_MIGRATIONS_DATABASE_URL) and connect as a role made by "
                f"`crm db grant-app-role`")
    return None


def warn_privileged_role(app) -> str | None:
    """At start-up: log :func:`database_role_problem` as a warning (and return it). A database that
    cannot be reached yet (``crm init``, before ``crm db upgrade``) is no problem here; the pool's
    connection is closed again, so no socket is shared with forked workers."""
    if not str(app.config.get("SQLALCHEMY_DATABASE_URI") or "").startswith("postgresql"):
        return None
    with app.app_context():
        try:
            problem = database_role_problem()
        except Exception:  # noqa: BLE001 - unreachable or not yet created: /readyz tells
            problem = None
        finally:
            db.session.remove()
            db.engine.dispose()
    if problem:
        log.warning("database role: %s", problem)
    return problem


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["database"] = f"error: {type(exc).__name__}"
    try:

        redis_connection().ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"error: {type(exc).__name__}"
    try:

        keyring()
        checks["keys"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["keys"] = f"error: {exc}"
    try:
        problem = database_role_problem()
        checks["database_role"] = f"warning: {problem}" if problem else "ok"
    except Exception as exc:  # noqa: BLE001
        checks["database_role"] = f"error: {type(exc).__name__}"
    configured = current_app.config["CRM_WHISPER_MODEL"]
    model = Path(configured) if configured else Path(current_app.config["CRM_MODELS_DIR"]) / "whisper-base"
    checks["model"] = "ok" if (model / "model.bin").exists() else "not assembled yet (built on first transcription)"
    ok = all(v == "ok" for k, v in checks.items() if k not in ("model", "database_role"))
    return jsonify({"status": "ok" if ok else "unavailable", "checks": checks}), 200 if ok else 503
