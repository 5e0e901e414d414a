"""Sign-in throttling (issue 17 point 3), in process: growing delays per account, a generous limit per
address that counts failures only, refusals answered 429 with Retry-After and logged, a browser that
signed in before not kept out by someone hammering its account, the code step throttled the same
way, and the DPO alerted. (The same under gunicorn with four workers: test_login_throttle_gunicorn.)"""
from __future__ import annotations

import secrets

import pytest

from crm.db import db
from crm.dpo.models import AccessAlert
from crm.security.models import AccessLogEntry
from tests import mfa as helper
from tests.clients import SharedContextClient

WRONG = "not-the-password"


class FakeClock:
    """``time`` for crm.users.throttle: the delays are checked without sleeping."""

    def __init__(self):
        import time as real

        self.now = real.time()

    def time(self) -> float:
        return self.now


@pytest.fixture()
def throttled(ctx, monkeypatch):
    """Throttling on (the suite's app has it off) with the defaults' shape; a fake clock."""
    from crm.users import throttle

    monkeypatch.setitem(ctx.config, "CRM_LOGIN_THROTTLE", True)
    monkeypatch.setitem(ctx.config, "CRM_LOGIN_FREE_FAILURES", 3)
    monkeypatch.setitem(ctx.config, "CRM_LOGIN_MAX_DELAY_S", 300)
    clock = FakeClock()
    monkeypatch.setattr(throttle, "time", clock)
    return clock


def _client(ctx, address: str | None = None) -> SharedContextClient:
    """A client from its own address (10.x.y.z, so tests do not share the per-address window)."""
    c = SharedContextClient(ctx)
    c.client.environ_base["REMOTE_ADDR"] = address or f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    return c


def _try(client, username, password=WRONG):
    return client.post("/login", data={"username": username, "password": password})


def _throttled_entries(username):
    return [e for e in db.session.execute(db.select(AccessLogEntry).where(AccessLogEntry.action == "auth.login_throttled")
                                          .order_by(AccessLogEntry.seq)).scalars() if e.actor == username]


def test_failures_against_one_account_meet_growing_delays(ctx, make_user, throttled):
    user = make_user("operator")
    c = _client(ctx)
    for _ in range(3):  # mistyping costs nothing
        assert _try(c, user.username).status_code == 200
    waits = []
    for _ in range(4):
        resp = _try(c, user.username)
        assert resp.status_code == 429
        page = resp.get_data(as_text=True)
        assert "Слишком много неудачных попыток входа в эту учётную запись" in page
        wait = int(resp.headers["Retry-After"])
        assert f"Повторите через {wait} с" in page
        waits.append(wait)
        throttled.now += wait - 0.5
        assert _try(c, user.username).status_code == 429  # still too early
        throttled.now += 0.5
        assert _try(c, user.username).status_code == 200  # the attempt is allowed (and wrong)
    assert waits == [2, 4, 8, 16]
    # the right password is also made to wait (a delay, not a lock-out) …
    resp = _try(c, user.username, helper.PASSWORD)
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) == 32
    # … and passes once the wait is over; the account's failures are then forgotten
    throttled.now += 32
    assert _try(c, user.username, helper.PASSWORD).status_code == 302
    entries = _throttled_entries(user.username)
    assert len(entries) == 9 and all(e.outcome == "denied" for e in entries)
    assert "stage=password scope=account retry_after=2" in entries[0].detail


def test_the_name_typed_is_throttled_whether_or_not_it_exists(ctx, throttled):
    c = _client(ctx)
    for _ in range(3):
        assert _try(c, "Nobody-Such").status_code == 200
    assert _try(c, "nobody-such").status_code == 429  # same account, any case: no way to tell it does not exist


def test_a_browser_that_signed_in_before_is_not_kept_out(ctx, make_user, throttled):
    user = make_user("operator")
    own = _client(ctx)
    helper.sign_in(own, user)
    own.post("/logout")
    attacker = _client(ctx)
    for _ in range(3):
        _try(attacker, user.username)
    assert _try(attacker, user.username).status_code == 429
    # the operator's own browser (its crm_known cookie) has a counter of its own
    assert _try(own, user.username, helper.PASSWORD).status_code == 302
    # a forged cookie does not help the attacker
    attacker.client.set_cookie("crm_known", "forged", path="/login")
    assert _try(attacker, user.username).status_code == 429


def test_successes_from_one_address_are_not_counted_failures_are(ctx, make_user, throttled, monkeypatch):
    monkeypatch.setitem(ctx.config, "CRM_LOGIN_LIMIT", "5 per 10 minutes")
    address = f"10.200.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    staff = [make_user("operator") for _ in range(12)]
    for user in staff:  # a whole shift behind one NAT
        helper.sign_in(_client(ctx, address), user)
    for i in range(5):  # failures against different accounts: the address counts them
        assert _try(_client(ctx, address), f"guess-{i}").status_code == 200
    resp = _try(_client(ctx, address), "guess-x")
    assert resp.status_code == 429 and "с вашего адреса" in resp.get_data(as_text=True)
    assert int(resp.headers["Retry-After"]) > 0
    assert "scope=address" in _throttled_entries("guess-x")[0].detail
    # another address is not affected
    assert _try(_client(ctx), "guess-y").status_code == 200


def test_the_code_step_is_throttled_too(ctx, make_user, throttled):
    user = make_user("operator")
    helper.sign_in(_client(ctx), user)
    c = _client(ctx)
    assert _try(c, user.username, helper.PASSWORD).status_code == 302
    for _ in range(3):
        assert c.post("/login/code", data={"code": "000000"}).status_code == 200
    resp = c.post("/login/code", data={"code": helper.code_for(user.username)})
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) == 2
    assert "stage=code scope=account" in _throttled_entries(user.username)[0].detail
    throttled.now += 2
    assert c.post("/login/code", data={"code": helper.code_for(user.username)}).status_code == 302


def test_repeated_failures_alert_the_dpo(ctx, make_user, throttled, monkeypatch):
    monkeypatch.setitem(ctx.config, "CRM_LOGIN_ALERT_ACCOUNT", 3)
    monkeypatch.setitem(ctx.config, "CRM_LOGIN_ALERT_ADDRESS", 4)
    user = make_user("operator")
    address = f"10.201.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    c = _client(ctx, address)
    for _ in range(3):
        _try(c, user.username)
    alerts = db.session.execute(db.select(AccessAlert).where(AccessAlert.rule == "login_failures")).scalars().all()
    assert [(a.actor, a.count) for a in alerts] == [(user.username, 3)]
    _try(c, "someone-else")  # the 4th failure from the address
    alerts = db.session.execute(db.select(AccessAlert).where(AccessAlert.rule == "login_failures")
                                .order_by(AccessAlert.id)).scalars().all()
    assert len(alerts) == 2 and address in alerts[1].detail and alerts[1].count == 4
    # the DPO sees it on the alerts page
    dpo = make_user("dpo")
    dpo_client = _client(ctx)
    helper.sign_in(dpo_client, dpo)
    html = dpo_client.get("/dpo/alerts").get_data(as_text=True)
    assert "повторные неудачные попытки входа" in html and user.username in html


def test_without_redis_sign_in_goes_ahead_unthrottled(ctx, make_user, throttled, monkeypatch, caplog):
    """An outage of the counters does not stop a shift: the attempt is checked as usual, a warning logged."""
    import redis

    from crm.users import throttle

    user = make_user("operator")
    helper.sign_in(_client(ctx), user)
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    monkeypatch.setattr(throttle, "redis_connection", lambda: dead)
    monkeypatch.setitem(ctx.extensions, "crm_login_window", None)
    monkeypatch.setattr(throttle, "storage_uri", lambda app: "redis://127.0.0.1:1")
    c = _client(ctx)
    for _ in range(5):
        assert _try(c, user.username).status_code == 200  # wrong: refused as wrong, not as throttled
    helper.sign_in(c, user)
    assert "sign-in throttling skipped: Redis unavailable" in caplog.text
