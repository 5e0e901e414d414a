"""Shared fixtures.

Each test run gets its own database and its own Redis namespace, and removes them at the end:
- ``DATABASE_URL`` set (CI: PostgreSQL): a fresh database ``crm_test_<random>`` is created on that
  server, migrated with Alembic, and dropped afterwards; otherwise a SQLite file in a temp instance.
- ``REDIS_URL`` set (CI: the machine's Redis): queue names get a per-run prefix and every key of
  that prefix, and every RQ job of its queues, is deleted afterwards; otherwise the embedded
  redis-server runs in the temp instance.
Rows are deleted after every test, so tests cannot see each other's data.
"""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask.cli import ScriptInfo

from crm.calls.transcription import TranscriptResult, transcribe
from crm.calls.transcription import model as wm
from tests.clients import OpenApiCheckingClient

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TEST_DATA = ROOT / "tests" / "data"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with a clear message when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared data set is not next to this checkout")
    return path


def tamper(sql: str, **params) -> None:
    """Run ``sql`` against the access log as an attacker with DDL rights would: on PostgreSQL the
    append-only trigger is disabled around it."""
    from crm.db import db

    db.session.commit()  # end the session's transaction (on SQLite it holds the write lock)
    pg = db.engine.dialect.name == "postgresql"
    with db.engine.begin() as conn:
        if pg:
            conn.execute(sa.text("ALTER TABLE access_log DISABLE TRIGGER access_log_append_only"))
        conn.execute(sa.text(sql), params)
        if pg:
            conn.execute(sa.text("ALTER TABLE access_log ENABLE TRIGGER access_log_append_only"))


def _make_database(url: str) -> tuple[str, callable]:
    """Create a throwaway database on the server of ``url``; returns its URL and a drop function."""
    name = f"crm_test_{secrets.token_hex(4)}"
    base = sa.make_url(url.replace("postgresql://", "postgresql+psycopg://", 1)
                       if url.startswith("postgresql://") else url)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop():
        with admin.connect() as conn:
            conn.execute(sa.text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(scope="session")
def instance_dir():
    path = Path(tempfile.mkdtemp(prefix="crm-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def app_config(instance_dir):
    """Config shared by the test app and the browser tests' live server."""
    from crm.security.keyring import init_keys

    init_keys(instance_dir / "keys")
    cfg = {"INSTANCE_PATH": str(instance_dir), "SECRET_KEY": secrets.token_hex(16), "TESTING": True,
           "CRM_QUEUE_PREFIX": f"test-{secrets.token_hex(4)}-", "CRM_EXPECTED_CITIZENS": 100_000,
           "RATELIMIT_ENABLED": False,
           # sign-in throttling off for the suite's apps (every test signs in from 127.0.0.1); tests/users turn it on
           "CRM_LOGIN_THROTTLE": False,
           # around the clock, every day: the alert tests must not depend on when the suite runs
           # (test_after_hours_alert sets its own hours)
           "CRM_AUDIT_WORKING_HOURS": "00:00-00:00", "CRM_AUDIT_WORKING_DAYS": (1, 2, 3, 4, 5, 6, 7),
           # no quiet hours for citizen notifications (tests/notifications sets its own windows)
           "CRM_NOTIFY_QUIET_HOURS": "",
           # the operator of personal data named in consent texts: record() refuses without it
           "CRM_CONTROLLER_NAME": "ООО «УК Тестовая»", "CRM_CONTROLLER_ADDRESS": "г. Тестов, ул. Проверочная, д. 1"}
    drop = drop_keystore = None
    url = os.environ.get("DATABASE_URL")
    if url and url.startswith(("postgres://", "postgresql")):
        url = url.replace("postgres://", "postgresql://", 1)
        cfg["SQLALCHEMY_DATABASE_URI"], drop = _make_database(url)
        # the key store is a database of its own (crm/security/keystore.py); on SQLite it defaults
        # to instance_dir/keystore.sqlite3
        cfg["CRM_KEYSTORE_URL"], drop_keystore = _make_database(url)
    else:
        cfg["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance_dir / 'test.sqlite3'}"
    if os.environ.get("REDIS_URL"):
        cfg["REDIS_URL"] = os.environ["REDIS_URL"]
    else:
        from crm import jobs

        cfg["REDIS_URL"] = None
        jobs.start_embedded(instance_dir)
    yield cfg
    if drop:
        drop()
    if drop_keystore:
        drop_keystore()
    if not os.environ.get("REDIS_URL"):
        from crm import jobs

        jobs.stop_embedded(instance_dir)


@pytest.fixture(scope="session")
def app(app_config):
    from flask_migrate import upgrade

    from crm import create_app

    app = create_app({**app_config, "WTF_CSRF_ENABLED": False})
    app.test_client_class = OpenApiCheckingClient  # every /api/v1 answer validated against the document
    with app.app_context():
        upgrade()
    yield app
    from crm.jobs import redis_connection

    conn = redis_connection(app)
    prefix = app.config["CRM_QUEUE_PREFIX"]
    _drop_run_keys(conn, prefix)
    with app.app_context():
        from crm.db import db

        db.engine.dispose()


def _drop_run_keys(conn, prefix: str) -> None:
    """Delete what this run left in a shared Redis: every key with the run's prefix (queues, registries,
    prefixed job ids), the RQ jobs whose queue (``origin``) has the prefix with their results and
    executions (RQ names those by the job's uuid only, so a prefix pattern misses them), results whose
    job is gone, the run's workers, and the run's queues in RQ's ``rq:queues`` set (else
    ``Queue.all()`` of another run lists them)."""
    doomed: set[bytes] = set(conn.scan_iter(f"*{prefix}*"))
    ids = set()
    for key in conn.scan_iter("rq:job:*"):
        origin = conn.hget(key, "origin")
        if origin and origin.decode().startswith(prefix):
            doomed.add(key)
            ids.add(key.decode().split(":", 2)[2])
    for key in conn.scan_iter("rq:*"):
        parts = key.decode().split(":")
        if len(parts) < 3:
            continue
        if parts[2] in ids:
            doomed.add(key)  # rq:results:<id>, rq:executions:<id>, rq:execution:<id>:<n>, rq:job:<id>:dependents
        elif parts[1] in ("results", "executions", "execution") and not conn.exists(f"rq:job:{parts[2]}"):
            doomed.add(key)  # a result outliving its job (a test emptied the queue): nobody's any more
        elif parts[1] == "worker" and (conn.hget(key, "queues") or b"").decode().startswith(prefix):
            doomed.add(key)  # this run's burst workers (RQ keeps a dead worker's hash for a minute)
    doomed = list(doomed)
    for i in range(0, len(doomed), 500):
        conn.delete(*doomed[i:i + 500])
    members = [m for m in conn.smembers("rq:queues") if m.decode().startswith(f"rq:queue:{prefix}")]
    if members:
        conn.srem("rq:queues", *members)


def _wipe(app) -> None:
    from crm.db import db
    from crm.security import crypto

    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                if table.name == "audit_head":
                    conn.execute(table.update().values(seq=0, hash="0" * 64))
                elif table.name == "access_log" and conn.dialect.name == "postgresql":
                    # the append-only trigger refuses DELETE and its statement trigger TRUNCATE: the owner
                    # switches the latter off for the wipe, in this transaction only
                    conn.execute(sa.text("ALTER TABLE access_log DISABLE TRIGGER access_log_no_truncate"))
                    conn.execute(sa.text("TRUNCATE access_log"))
                    conn.execute(sa.text("ALTER TABLE access_log ENABLE TRIGGER access_log_no_truncate"))
                else:
                    conn.execute(table.delete())
        # the CRM's own Redis keys of this run (the telephony inbox and its drain lease, screen pops,
        # throttling counters, caches): a test must not build, count or wait for another test's
        try:
            from crm import jobs

            conn = jobs.redis_connection()
            keys = list(conn.scan_iter(match=f"{app.config['CRM_QUEUE_PREFIX']}crm:*", count=1000))
            if keys:
                conn.delete(*keys)
        except Exception:  # noqa: BLE001 - a test that took Redis down; the next one starts it again
            pass
    crypto.clear_caches()


@pytest.fixture()
def ctx(app):
    """An app context with a clean database afterwards."""
    with app.app_context():
        from crm.consent.services import ensure_purposes

        ensure_purposes()
        yield app
    _wipe(app)


@pytest.fixture()
def client(ctx):
    return ctx.test_client()


@pytest.fixture()
def sms_inbox(monkeypatch):
    """The SMS the gateway delivered during the test, in order (``crm.consent.sms.OutgoingSms``: ``to``,
    ``body`` with its one-time code or link, ``message_id``): every app of this process (the test app,
    the browser tests' live server) sends through a recording gateway. The outbox keeps secrets masked,
    so this is where a test reads the code or the link the citizen got."""
    from crm.consent import sms

    sent: list = []

    class Recording(sms.SmsGateway):
        def deliver(self, message) -> None:
            sent.append(message)

    monkeypatch.setattr(sms, "gateway", lambda app=None: Recording())
    return sent


@pytest.fixture()
def make_user(ctx):
    """``make_user(role="operator", username=None, password=...)``: a staff account (tests.factories.UserFactory)."""
    from tests.factories import PASSWORD, UserFactory

    def make(role: str = "operator", username: str | None = None, password: str = PASSWORD):
        return UserFactory(role=role, password=password, **({"username": username} if username else {}))
    return make


@pytest.fixture()
def runner(ctx):
    """``runner(*args, input=None, app=None)``: run ``crm ARGS`` in-process against the test app (or
    ``app``) and return click's ``Result`` (``exit_code``, ``output``). The test's transaction is
    committed first (on SQLite it holds the write lock) and the session expired afterwards, so the
    command and the test see each other's writes."""
    from crm.cli import main
    from crm.db import db

    def run(*args: str, input: str | None = None, app=None):
        target = app or ctx
        db.session.commit()
        result = CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: target), input=input)
        db.session.expire_all()
        return result
    return run


@pytest.fixture()
def recordings(ctx, monkeypatch, tmp_path):
    """Recordings stored in the test's own folder (``CRM_RECORDINGS_DIR``); the jobs queued by
    uploads (tests.factories.CallFactory) removed afterwards. Yields the folder."""
    from crm import jobs

    folder = tmp_path / "recordings"
    monkeypatch.setitem(ctx.config, "CRM_RECORDINGS_DIR", str(folder))
    yield folder
    for q in jobs.QUEUES:
        jobs.queue(q).empty()


@pytest.fixture()
def login(client):
    """``login(user)``: sign ``user`` in on ``client`` through the real two-step flow (password, then
    enrolment or a TOTP code computed with pyotp: tests.mfa.sign_in); returns the client."""
    from tests.mfa import sign_in

    def do(user, password: str = "correct-horse-1"):
        sign_in(client, user, password)
        return client
    return do


@pytest.fixture()
def api_token(ctx):
    from crm.users.services import issue_token

    return lambda user: {"Authorization": f"Bearer {issue_token(user)}"}


@pytest.fixture()
def run_worker(ctx):
    """Run a real RQ worker in burst mode over this run's queues (same process, like `crm worker`);
    ``run(("telephony",))`` serves only those queues (`crm worker --queues telephony`)."""
    def run(queues: tuple[str, ...] | None = None) -> None:
        from flask import current_app

        from crm.db import db
        from crm.worker import make_worker

        # end the test's own transaction first: on SQLite it holds the write lock (BEGIN IMMEDIATE)
        # and the job, in an app context and session of its own, would wait for it and fail
        db.session.commit()

        make_worker(current_app._get_current_object(), queues=queues).work(burst=True)  # the test's app
    return run


def pytest_collection_modifyitems(config, items):
    if not os.environ.get("CRM_SKIP_BROWSER"):
        return
    skip = pytest.mark.skip(reason="CRM_SKIP_BROWSER is set")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


# The Whisper model, shared by every test that transcribes (tests marked ``model`` load the
# bundled base model once per session, or $CRM_WHISPER_MODEL).
@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    env = os.environ.get("CRM_WHISPER_MODEL")
    if env:
        return Path(env)
    return wm.ensure_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def model(model_dir):
    """Load once; every transcribe() below reuses this cached instance (same path+threads)."""
    return wm.load_model(model_dir, 2)


@pytest.fixture(scope="session")
def run(model, model_dir):
    def _run(path, **kw) -> TranscriptResult:
        return transcribe(path, model_dir=model_dir, cpu_threads=2, **kw)

    return _run
