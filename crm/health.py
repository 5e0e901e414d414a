"""``/healthz`` (process up) and ``/readyz`` (database, Redis, key store, model)."""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from crm.db import db
from crm.jobs import redis_connection
from crm.security.crypto import keyring

bp = Blueprint("health", __name__)


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
    configured = current_app.config["CRM_WHISPER_MODEL"]
    model = Path(configured) if configured else Path(current_app.config["CRM_MODELS_DIR"]) / "whisper-base"
    checks["model"] = "ok" if (model / "model.bin").exists() else "not assembled yet (built on first transcription)"
    ok = all(v == "ok" for k, v in checks.items() if k != "model")
    return jsonify({"status": "ok" if ok else "unavailable", "checks": checks}), 200 if ok else 503
