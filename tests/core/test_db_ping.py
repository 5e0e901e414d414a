"""Pooled PostgreSQL connections: pinged at checkout only after sitting idle (crm.db.ping_when_idle),
so a server restart or an idle-timeout firewall costs no request, while busy connections pay no
extra round trip per transaction."""
from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from crm.db import db, ping_when_idle


@pytest.fixture()
def engine(ctx):
    """A separate engine on the test database, so the pool under test is ours alone."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only (SQLite has no server connection to lose); set DATABASE_URL")
    eng = sa.create_engine(db.engine.url)
    yield eng
    eng.dispose()


def _pid(eng) -> int:
    with eng.connect() as conn:
        return conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()


def _count_pings(eng) -> list:
    calls = []
    real = eng.dialect.do_ping

    def counting(dbapi_conn):
        calls.append(1)
        return real(dbapi_conn)

    eng.dialect.do_ping = counting
    return calls


def test_connection_killed_by_the_server_while_idle_is_replaced_before_use(engine):
    ping_when_idle(engine, 0.0)
    first = _pid(engine)
    with db.engine.connect() as other:
        assert other.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": first}).scalar_one()
    time.sleep(0.1)
    second = _pid(engine)  # no error: the ping found the pooled connection dead, the pool reconnected
    assert second != first


def test_without_the_ping_the_dead_connection_fails_the_next_transaction(engine):
    """The control for the test above: what the ping saves a request from."""
    first = _pid(engine)
    with db.engine.connect() as other:
        other.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": first})
    time.sleep(0.1)
    with pytest.raises(sa.exc.OperationalError):
        _pid(engine)


def test_busy_connections_are_not_pinged_idle_ones_are(engine):
    ping_when_idle(engine, 60.0)
    pings = _count_pings(engine)
    first = _pid(engine)
    for _ in range(5):
        assert _pid(engine) == first  # the same pooled connection, checked out again at once
    assert pings == []
    for rec in engine.pool._pool.queue:  # as if it had sat in the pool for two minutes
        rec.info["crm_idle_since"] -= 120
    assert _pid(engine) == first  # alive: pinged once and handed out
    assert pings == [1]
