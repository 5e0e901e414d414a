"""Server-side sessions (issue 17 point 2): sign-out ends that session only and a copied cookie is
refused, idle and absolute limits (moved through the session row, never by sleeping), role change and
deactivation end every session, a fresh password before exports of personal data, the HTTPS proxy
settings (ProxyFix hops, Secure cookies, HSTS, sign-in without a Referer), a new CSRF token at sign-in,
the citizen's self-service sign-out, and ``Cache-Control: no-store`` on personal-data JSON."""
from __future__ import annotations

import re
import time
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
import sqlalchemy as sa

from crm.db import db, utcnow
from crm.security.models import AccessLogEntry
from crm.users.models import UserSession
from tests import mfa
from tests.clients import SecondAppClient
from tests.factories import PASSWORD, CitizenFactory


def path_of(resp) -> str:
    return urlparse(resp.headers["Location"]).path


def sign_in(client, user, password: str = PASSWORD, **kw):
    """Both sign-in steps: the password, then the second factor (tests.mfa)."""
    mfa.sign_in_response(client, user, password, **kw)
    return client


def rows(user) -> list[UserSession]:
    db.session.expire_all()
    return list(db.session.execute(sa.select(UserSession).where(UserSession.user_id == user.id)
                                   .order_by(UserSession.created_at)).scalars())


def shift(row_id: str, **ago: timedelta) -> None:
    """Move a session's clock back: ``created_at=timedelta(hours=13)`` makes it 13 h old."""
    now = utcnow()
    db.session.execute(sa.update(UserSession).where(UserSession.id == row_id)
                       .values(**{column: now - delta for column, delta in ago.items()}))
    db.session.commit()


def actions(action: str) -> list[AccessLogEntry]:
    db.session.expire_all()
    return list(db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action == action)
                                   .order_by(AccessLogEntry.seq)).scalars())


@pytest.fixture()
def operator(make_user):
    """An operator whose second factor is set up already (through the service: no session is made),
    so each sign-in here is the password and a code."""
    user = make_user("operator")
    mfa.enrol(user)
    return user


# --- sign-out and the copied cookie ------------------------------------------------------------------

def test_signout_refuses_the_copied_cookie_while_another_session_goes_on(ctx, operator):
    desk, phone = sign_in(ctx.test_client(), operator), sign_in(ctx.test_client(), operator)
    assert desk.get("/operator").status_code == 200 and phone.get("/operator").status_code == 200
    first, second = rows(operator)
    assert first.ended_at is None and second.ended_at is None and first.ip == "127.0.0.1"
    copied = desk.get_cookie("session").value

    resp = desk.post("/logout")
    assert resp.status_code == 302 and path_of(resp) == "/login"
    desk.set_cookie("session", copied)  # the copy kept from before the sign-out
    replay = desk.get("/operator")
    assert replay.status_code == 302 and path_of(replay) == "/login"
    assert "Сеанс завершён" in desk.get("/login").get_data(as_text=True)

    assert phone.get("/operator").status_code == 200  # the same user's other session goes on
    first, second = rows(operator)
    assert (first.end_reason, second.end_reason) == ("logout", None)
    assert [e.actor for e in actions("auth.logout")] == [operator.username]


def test_the_row_holds_only_a_hash_of_the_cookies_session_id(ctx, operator):
    client = sign_in(ctx.test_client(), operator)
    with client.session_transaction() as s:
        sid = s["crm_sid"]
    (row,) = rows(operator)
    assert len(sid) >= 40 and row.id != sid and sid not in row.id


# --- idle and absolute limits ------------------------------------------------------------------------

def test_idle_session_ends_after_the_configured_minutes(ctx, operator):
    client = sign_in(ctx.test_client(), operator)
    (row,) = rows(operator)
    shift(row.id, last_seen_at=timedelta(minutes=14))  # still within 15 min: works, and counts as activity
    assert client.get("/operator").status_code == 200
    (row,) = rows(operator)
    assert utcnow() - row.last_seen_at < timedelta(minutes=1)

    shift(row.id, last_seen_at=timedelta(minutes=15, seconds=5))
    resp = client.get("/operator?tab=1")
    assert resp.status_code == 302 and path_of(resp) == "/login"
    assert parse_qs(urlparse(resp.headers["Location"]).query)["next"] == ["/operator?tab=1"]
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "не было действий дольше 15 мин" in page
    (row,) = rows(operator)
    assert row.end_reason == "idle" and row.ended_at is not None
    shift(row.id, last_seen_at=timedelta(0))  # an ended session does not come back
    assert client.get("/operator").status_code == 302


def test_idle_limit_is_configurable(ctx, operator, monkeypatch):
    monkeypatch.setitem(ctx.config, "CRM_SESSION_IDLE_MIN", 60)
    client = sign_in(ctx.test_client(), operator)
    (row,) = rows(operator)
    shift(row.id, last_seen_at=timedelta(minutes=30))
    assert client.get("/operator").status_code == 200


def test_api_calls_of_the_pages_do_not_count_as_activity(ctx, make_user):
    supervisor = make_user("supervisor")
    client = sign_in(ctx.test_client(), supervisor)
    (row,) = rows(supervisor)
    shift(row.id, last_seen_at=timedelta(minutes=10))
    assert client.get("/api/v1/telephony/queue").status_code == 200  # a board polling with the cookie
    (after,) = rows(supervisor)
    assert utcnow() - after.last_seen_at > timedelta(minutes=9)


def test_absolute_lifetime_ends_a_busy_session(ctx, operator):
    client = sign_in(ctx.test_client(), operator)
    (row,) = rows(operator)
    shift(row.id, created_at=timedelta(hours=11, minutes=59))
    assert client.get("/operator").status_code == 200
    shift(row.id, created_at=timedelta(hours=12, seconds=5), last_seen_at=timedelta(seconds=1))  # active, but 12 h old
    resp = client.get("/operator")
    assert resp.status_code == 302 and path_of(resp) == "/login"
    assert "прошло 12 ч после входа" in client.get("/login").get_data(as_text=True)
    assert rows(operator)[0].end_reason == "expired"


def test_api_answers_401_for_an_ended_session(ctx, make_user):
    supervisor = make_user("supervisor")
    client = sign_in(ctx.test_client(), supervisor)
    (row,) = rows(supervisor)
    shift(row.id, last_seen_at=timedelta(hours=1))
    resp = client.get("/api/v1/telephony/queue")
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "unauthorized"


# --- role change, deactivation, ending sessions ------------------------------------------------------

def test_role_change_ends_every_session_of_the_user(ctx, operator, make_user):
    other = make_user("operator")
    a, b = sign_in(ctx.test_client(), operator), sign_in(ctx.test_client(), operator)
    bystander = sign_in(ctx.test_client(), other)
    operator.role = "supervisor"  # whichever service does it: the model ends the sessions
    db.session.commit()
    for client in (a, b):
        resp = client.get("/")
        assert resp.status_code == 302 and path_of(resp) == "/login"
    assert {r.end_reason for r in rows(operator)} == {"role"}
    assert bystander.get("/operator").status_code == 200
    assert "изменена роль" in a.get("/login").get_data(as_text=True)
    sign_in(a, operator)  # signing in again works, with the new role
    assert a.get("/qa/calls").status_code == 200


def test_deactivation_ends_every_session(ctx, operator):
    client = sign_in(ctx.test_client(), operator)
    operator.active = False
    db.session.commit()
    assert client.get("/operator").status_code == 302
    assert {r.end_reason for r in rows(operator)} == {"disabled"}


def test_other_changes_to_the_user_keep_the_session(ctx, operator):
    client = sign_in(ctx.test_client(), operator)
    operator.full_name = "Иванова Анна"
    db.session.commit()
    assert client.get("/operator").status_code == 200


def test_end_sessions_ends_every_session_and_is_logged(ctx, operator, make_user):
    from crm.users import services

    admin = make_user("admin")
    a, b = sign_in(ctx.test_client(), operator), sign_in(ctx.test_client(), operator)
    services.end_sessions(operator, admin)
    assert {r.end_reason for r in rows(operator)} == {"admin"}
    assert a.get("/operator").status_code == 302 and b.get("/operator").status_code == 302
    assert "администратором" in a.get("/login").get_data(as_text=True)
    (entry,) = actions("user.end_sessions")
    assert entry.actor == admin.username and entry.detail == f"user={operator.id}"


def test_role_change_and_disabling_through_the_services(ctx, operator, make_user):
    from crm.users import services

    admin = make_user("admin")
    a = sign_in(ctx.test_client(), operator)
    services.change_role(operator, "supervisor", admin)
    assert a.get("/").status_code == 302
    assert {r.end_reason for r in rows(operator)} == {"role"}
    b = sign_in(ctx.test_client(), operator)
    services.disable_user(operator, admin)
    assert b.get("/").status_code == 302
    assert [r.end_reason for r in rows(operator)] == ["role", "disabled"]


def test_my_sessions_page_ends_another_session(ctx, operator):
    desk, phone = sign_in(ctx.test_client(), operator), sign_in(ctx.test_client(), operator,
                                                                headers={"User-Agent": "PhoneBrowser/1.0"})
    page = desk.get("/account/sessions").get_data(as_text=True)
    assert "PhoneBrowser/1.0" in page and "этот сеанс" in page
    phone_row = next(r for r in rows(operator) if r.user_agent == "PhoneBrowser/1.0")
    assert desk.post(f"/account/sessions/{phone_row.id}/end").status_code == 302
    assert phone.get("/operator").status_code == 302
    assert desk.get("/operator").status_code == 200
    assert [e.actor for e in actions("auth.session_end")] == [operator.username]
    # nobody ends another user's session through their own page
    desk_row = next(r for r in rows(operator) if r.ended_at is None)
    from crm.users import services

    intruder = sign_in(ctx.test_client(), services.create_user("intruder", "operator", PASSWORD))
    intruder.post(f"/account/sessions/{desk_row.id}/end")
    assert desk.get("/operator").status_code == 200
    assert len(actions("auth.session_end")) == 1


# --- fresh sign-in before exports of personal data ---------------------------------------------------

def test_export_asks_for_the_password_again_then_continues(ctx, make_user):
    dpo = make_user("dpo")
    citizen = CitizenFactory()
    db.session.commit()
    client = sign_in(ctx.test_client(), dpo)
    url = f"/dpo/citizens/{citizen.id}/access-report?format=csv"
    assert client.get(url).status_code == 200  # typed the password a moment ago
    (row,) = rows(dpo)
    shift(row.id, fresh_at=timedelta(minutes=6))

    resp = client.get(url)
    assert resp.status_code == 302 and path_of(resp) == "/reauth"
    back = parse_qs(urlparse(resp.headers["Location"]).query)["next"][0]
    assert back == url
    assert client.get(f"/dpo/citizens/{citizen.id}/access-report").status_code == 200  # the page itself: no export
    wrong = client.post(resp.headers["Location"], data={"password": "not-the-password",
                                                        "code": mfa.code_for(dpo.username)})
    assert wrong.status_code == 422 and "Неверный пароль" in wrong.get_data(as_text=True)
    assert client.get(url).status_code == 302
    # the right password without the second factor's code is not enough
    no_code = client.post(resp.headers["Location"], data={"password": PASSWORD})
    assert no_code.status_code == 422 and "Неверный пароль или код" in no_code.get_data(as_text=True)
    assert client.get(url).status_code == 302
    ok = client.post(resp.headers["Location"], data={"password": PASSWORD, "code": mfa.code_for(dpo.username)})
    assert ok.status_code == 302 and ok.headers["Location"].endswith(url)
    csv = client.get(url)
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert [e.outcome for e in actions("auth.reauth")] == ["denied", "denied", "ok"]


@pytest.mark.parametrize("path", ["/dpo/requests/{rid}/export", "/dpo/requests/{rid}/export?format=json",
                                  "/dpo/citizens/{cid}/access-report/print"])
def test_every_export_of_personal_data_is_gated(ctx, make_user, path):
    dpo = make_user("dpo")
    client = sign_in(ctx.test_client(), dpo)
    (row,) = rows(dpo)
    shift(row.id, fresh_at=timedelta(hours=1))
    resp = client.get(path.format(rid=uuid.uuid4(), cid=uuid.uuid4()))
    assert resp.status_code == 302 and path_of(resp) == "/reauth"


def test_reauth_refuses_an_open_redirect(ctx, make_user):
    dpo = make_user("dpo")
    client = sign_in(ctx.test_client(), dpo)
    resp = client.post("/reauth?next=https://evil.example/", data={"password": PASSWORD,
                                                                   "code": mfa.code_for(dpo.username)})
    assert resp.status_code == 302 and urlparse(resp.headers["Location"]).netloc in ("", "localhost")


# --- HTTPS behind a proxy ----------------------------------------------------------------------------

@pytest.fixture()
def https_app(ctx, app_config):
    """``make(**config)``: an app of the same database with CSRF on and the given settings."""
    from crm import create_app

    made = []

    def make(**cfg):
        db.session.commit()
        app = create_app({**app_config, "WTF_CSRF_ENABLED": True, **cfg})
        app.test_client_class = SecondAppClient  # ends the test's transaction before each request
        made.append(app)
        return app
    yield make
    for app in made:
        with app.app_context():
            db.engine.dispose()


def _token(resp) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', resp.get_data(as_text=True)).group(1)


def test_behind_a_tls_proxy_cookies_are_secure_hsts_is_sent_and_the_address_is_the_proxys_word(
        ctx, operator, https_app):
    app = https_app(CRM_HTTPS=True, CRM_TRUSTED_PROXIES=1)
    client = app.test_client()
    proxy = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.9, 203.0.113.7"}
    client.environ_base["wsgi.url_scheme"] = "http"  # the proxy speaks plain HTTP to the app
    page = client.get("/login", headers=proxy, base_url="http://crm.internal")  # no Referer anywhere below
    assert page.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    resp = mfa.sign_in_response(client, operator, csrf=True, headers=proxy, base_url="http://crm.internal")
    assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
    cookie = resp.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert resp.headers["Location"].startswith(("/", "https://"))
    (row,) = rows(operator)
    assert row.ip == "203.0.113.7"  # one hop trusted: the address the proxy saw, not the client's claim
    assert actions("auth.login")[-1].ip == "203.0.113.7"  # the access log takes it the same way
    # plain HTTP straight to the app (no proxy header): no HSTS
    assert "Strict-Transport-Security" not in app.test_client().get("/login", base_url="http://crm.internal").headers


def test_without_trusted_proxies_forwarded_headers_are_ignored(ctx, operator, https_app):
    app = https_app(CRM_HTTPS=True, CRM_TRUSTED_PROXIES=0)
    client = app.test_client()
    forged = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    page = client.get("/login", headers=forged, base_url="http://crm.internal")
    assert "Strict-Transport-Security" not in page.headers  # the request was plain HTTP whatever it claims
    mfa.sign_in_response(client, operator, csrf=True, headers=forged, base_url="http://crm.internal")
    (row,) = rows(operator)
    assert row.ip == "127.0.0.1"


def test_sign_in_over_https_without_a_referer(ctx, operator, https_app):
    app = https_app(CRM_HTTPS=True)
    client = app.test_client()
    resp = mfa.sign_in_response(client, operator, csrf=True, base_url="https://crm.example")  # both steps
    assert resp.status_code == 302 and path_of(resp) == "/"
    assert "Secure" in resp.headers["Set-Cookie"]
    assert client.get("/operator", base_url="https://crm.example").status_code == 200
    # the CSRF token is still checked: a post without it is refused
    other = app.test_client()
    refused = other.post("/login", base_url="https://crm.example",
                         data={"username": operator.username, "password": PASSWORD})
    assert refused.status_code == 400


def test_without_crm_https_flask_wtf_would_refuse_a_missing_referer(ctx, operator, https_app):
    """The control of the test above: Flask-WTF's strict Referer check is what CRM_HTTPS turns off."""
    app = https_app()
    client = app.test_client()
    page = client.get("/login", base_url="https://crm.example")
    resp = client.post("/login", base_url="https://crm.example",
                       data={"username": operator.username, "password": PASSWORD, "csrf_token": _token(page)})
    assert resp.status_code == 400
    assert "Secure" not in (page.headers.get("Set-Cookie") or "")


def test_the_csrf_token_changes_at_sign_in(ctx, operator, monkeypatch):
    monkeypatch.setitem(ctx.config, "WTF_CSRF_ENABLED", True)
    client = ctx.test_client()
    before = _token(client.get("/login"))
    resp = client.post("/login", data={"username": operator.username, "password": PASSWORD, "csrf_token": before})
    assert resp.status_code == 302 and path_of(resp) == "/login/code"  # the password: not signed in yet
    code_page = client.get("/login/code")
    assert _token(code_page) == before  # the pending sign-in keeps the token; signing in replaces it
    resp = client.post("/login/code", data={"code": mfa.code_for(operator.username), "csrf_token": before})
    assert resp.status_code == 302 and path_of(resp) == "/"
    after = _token(client.get("/operator"))
    assert after != before
    # a token planted before sign-in (session fixation) is worth nothing afterwards
    assert client.post("/logout", data={"csrf_token": before}).status_code == 400
    assert client.post("/logout", data={"csrf_token": after}).status_code == 302


# --- the citizen's self-service session --------------------------------------------------------------

def test_selfservice_signout_refuses_the_copied_cookie(ctx):
    citizen = CitizenFactory()
    db.session.commit()
    visitor, other = ctx.test_client(), ctx.test_client()
    for client, grant in ((visitor, "grant-one"), (other, "grant-two")):
        with client.session_transaction() as s:
            s["ss_scope"], s["ss_until"], s["ss_grant"] = [citizen.id], int(time.time()) + 600, grant
    assert visitor.get("/my/consents").status_code == 200
    copied = visitor.get_cookie("session").value
    assert visitor.post("/my/logout").status_code == 302
    visitor.set_cookie("session", copied)
    replay = visitor.get("/my/consents")
    assert replay.status_code == 302 and path_of(replay) == "/my"
    assert visitor.get("/my/appeals").status_code == 302
    assert other.get("/my/consents").status_code == 200  # another citizen session is not touched


# --- no caching of personal data ---------------------------------------------------------------------

def test_personal_data_json_is_no_store(ctx, operator, api_token):
    citizen = CitizenFactory()
    db.session.commit()
    client = ctx.test_client()
    resp = client.get(f"/api/v1/citizens/{citizen.id}", headers=api_token(operator))
    assert resp.status_code == 200 and resp.is_json
    assert resp.headers["Cache-Control"] == "no-store"
    error = client.get(f"/api/v1/citizens/{uuid.uuid4()}", headers=api_token(operator))
    assert error.headers["Cache-Control"] == "no-store"
    static = client.get("/static/app.css")
    assert static.status_code == 200 and "no-store" not in (static.headers.get("Cache-Control") or "")
