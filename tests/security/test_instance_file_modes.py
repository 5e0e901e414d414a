"""Files the application creates in its instance folder are readable by its own user only."""
from __future__ import annotations

import os
import secrets
import stat

import sqlalchemy as sa

from crm import create_app, jobs


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_sqlite_database_and_its_wal_are_mode_0600(tmp_path, app_config):
    fresh, old = tmp_path / "fresh.sqlite3", tmp_path / "old.sqlite3"
    old.touch(mode=0o644)
    os.chmod(old, 0o644)  # an installation from before the fix (umask may have masked touch's mode)
    for path in (fresh, old):
        app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}",
                          "CRM_KEYSTORE_URL": f"sqlite:///{tmp_path / 'keystore.sqlite3'}"})
        with app.app_context():
            from crm.db import db

            with db.engine.begin() as conn:
                conn.execute(sa.text("CREATE TABLE probe (x INTEGER)"))
                conn.execute(sa.text("INSERT INTO probe VALUES (1)"))
            assert _mode(path) == 0o600, path
            assert _mode(f"{path}-wal") == 0o600, path
            db.engine.dispose()


def test_embedded_redis_log_and_snapshot_are_mode_0600(tmp_path):
    instance = tmp_path / f"i{secrets.token_hex(2)}"  # a short path: unix socket paths are limited
    instance.mkdir()
    jobs.start_embedded(instance)
    try:
        assert _mode(instance / "redis.log") == 0o600
        assert _mode(instance / "redis.pid") == 0o600
    finally:
        jobs.stop_embedded(instance)
