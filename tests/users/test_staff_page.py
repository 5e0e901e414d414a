"""``/admin/staff`` (issue 17 point 4): administrators only; list, create, disable/enable, role,
reset password and issue a token (each secret shown once), end sessions, revoke tokens; POST only,
CSRF checked, a double submission does the change once. Administrators still cannot open the DPO's
pages."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from flask import g

from crm.db import db
from crm.security.models import AccessLogEntry
from crm.users import services
from crm.users.models import ApiToken, User
from tests.mfa import sign_in


@pytest.fixture()
def admin(make_user, login):
    user = make_user("admin", username="boss")
    login(user)
    return user


def _secret(html: str) -> str:
    m = re.search(r'<code id="secret-value">([^<]+)</code>', html)
    assert m, html[:2000]
    return m.group(1)


def _api_status(client, token: str) -> int:
    """The status of an API call with ``token``. The test's app context is shared by every request of
    the test, so the user the API signed in for its request is dropped from ``g`` afterwards (in
    production each request has its own context)."""
    status = client.get("/api/v1/executors", headers={"Authorization": f"Bearer {token}"}).status_code
    g.pop("_login_user", None)
    return status


def _form_key(html: str, action: str) -> str:
    """The one-time key of the form posting to ``action``."""
    form = html[html.index(f'action="{action}"'):]
    form = form[:form.index("</form>")]
    return re.search(r'name="form_key" type="hidden" value="([^"]+)"', form).group(1)


def test_only_admins_open_the_staff_pages(client, make_user, login):
    op = make_user("operator")
    assert client.get("/admin/staff").status_code == 302  # to the sign-in page
    for role in ("operator", "supervisor", "dpo", "executor"):
        login(make_user(role))
        assert client.get("/admin/staff").status_code == 403, role
        assert client.get(f"/admin/staff/{op.id}").status_code == 403, role
        assert client.post(f"/admin/staff/{op.id}/disable").status_code == 403, role
        assert client.post(f"/admin/staff/{op.id}/tokens", data={"name": "x"}).status_code == 403, role
    assert db.session.get(User, op.id).active and not services.tokens_of(op)


def test_changes_are_post_only(client, admin, make_user):
    op = make_user("operator")
    for path in ("disable", "enable", "end-sessions", "reset-password", "role", "tokens", "revoke-tokens"):
        assert client.get(f"/admin/staff/{op.id}/{path}").status_code == 405, path


def test_admin_lists_and_creates_with_a_temporary_password_shown_once(client, admin):
    page = client.get("/admin/staff")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-user="boss"' in html and "Сотрудники" in html
    key = re.search(r'name="form_key" type="hidden" value="([^"]+)"', html).group(1)
    data = {"username": "new_op", "full_name": "Новикова Ольга", "role": "operator", "password": "", "form_key": key}
    resp = client.post("/admin/staff", data=data)
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    password = _secret(resp.get_data(as_text=True))
    assert services.authenticate("new_op", password) is not None
    assert _secret  # shown in the answer to the POST only:
    user = services.get_by_username("new_op")
    assert password not in client.get(f"/admin/staff/{user.id}").get_data(as_text=True)
    # a double click: the same form key again creates nothing and says so
    again = client.post("/admin/staff", data=data, follow_redirects=True)
    assert "уже была отправлена" in again.get_data(as_text=True)
    entry = db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action == "user.create",
                                                               AccessLogEntry.detail.like(f"user={user.id} %"))).scalar_one()
    assert entry.actor_id == admin.id


def test_create_refusals_keep_the_form(client, admin):
    resp = client.post("/admin/staff", data={"username": "boss", "role": "operator", "password": "correct-horse-9"})
    assert resp.status_code == 422 and "уже существует" in resp.get_data(as_text=True)
    resp = client.post("/admin/staff", data={"username": "ivan", "role": "executor", "password": ""})
    assert resp.status_code == 422 and services.get_by_username("ivan") is None
    resp = client.post("/admin/staff", data={"username": "иван", "role": "operator"})
    assert resp.status_code == 422


def test_disable_enable_and_end_sessions(client, admin, make_user, app):
    op = make_user("operator")
    other = app.test_client()  # the operator's browser (the app context is shared: see _api_status)
    sign_in(other, op)  # the password, then the second factor (tests.mfa)
    assert not other.get("/").headers["Location"].startswith("/login")  # signed in: their home page
    g.pop("_login_user", None)
    resp = client.post(f"/admin/staff/{op.id}/end-sessions", follow_redirects=True)
    assert "Все сеансы пользователя завершены" in resp.get_data(as_text=True)
    g.pop("_login_user", None)
    assert other.get("/").headers["Location"].startswith("/login")  # signed out
    g.pop("_login_user", None)
    resp = client.post(f"/admin/staff/{op.id}/disable", follow_redirects=True)
    assert "Учётная запись отключена" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert not db.session.get(User, op.id).active
    resp = client.post(f"/admin/staff/{op.id}/disable", follow_redirects=True)  # a double click
    assert "уже отключена" in resp.get_data(as_text=True)
    assert 'data-user="%s"' % op.username in client.get("/admin/staff").get_data(as_text=True)
    client.post(f"/admin/staff/{op.id}/enable")
    db.session.expire_all()
    assert db.session.get(User, op.id).active


def test_an_admin_cannot_disable_themselves_nor_change_their_own_role(client, admin):
    resp = client.post(f"/admin/staff/{admin.id}/disable", follow_redirects=True)
    assert "нельзя отключить собственную" in resp.get_data(as_text=True)
    resp = client.post(f"/admin/staff/{admin.id}/role", data={"role": "operator"})
    assert resp.status_code == 422 and "нельзя менять роль собственной" in resp.get_data(as_text=True)
    db.session.expire_all()
    boss = db.session.get(User, admin.id)
    assert boss.active and boss.role == "admin"


def test_role_change(client, admin, make_user):
    op = make_user("operator")
    resp = client.post(f"/admin/staff/{op.id}/role", data={"role": "supervisor"}, follow_redirects=True)
    assert "Роль изменена" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, op.id).role == "supervisor"
    resp = client.post(f"/admin/staff/{op.id}/role", data={"role": "executor"})
    assert resp.status_code == 422 and "исполнителя" in resp.get_data(as_text=True)


def test_reset_password_shows_it_once_and_a_repeat_does_not_reset_again(client, admin, make_user):
    op = make_user("operator")
    html = client.get(f"/admin/staff/{op.id}").get_data(as_text=True)
    key = _form_key(html, f"/admin/staff/{op.id}/reset-password")
    resp = client.post(f"/admin/staff/{op.id}/reset-password", data={"form_key": key})
    assert resp.status_code == 200
    temporary = _secret(resp.get_data(as_text=True))
    again = client.post(f"/admin/staff/{op.id}/reset-password", data={"form_key": key}, follow_redirects=True)
    assert "уже была отправлена" in again.get_data(as_text=True) and temporary not in again.get_data(as_text=True)
    assert services.authenticate(op.username, temporary) is not None  # the shown password still works


def test_tokens_issue_once_list_and_revoke(client, admin, make_user):
    op = make_user("operator")
    html = client.get(f"/admin/staff/{op.id}").get_data(as_text=True)
    key = _form_key(html, f"/admin/staff/{op.id}/tokens")
    data = {"name": "АТС", "expires_days": "30", "form_key": key}
    resp = client.post(f"/admin/staff/{op.id}/tokens", data=data)
    assert resp.status_code == 200
    token = _secret(resp.get_data(as_text=True))
    assert client.post(f"/admin/staff/{op.id}/tokens", data=data).status_code == 302  # double click
    assert db.session.execute(sa.select(sa.func.count()).select_from(ApiToken)).scalar() == 1
    assert _api_status(client, token) == 200
    page = client.get(f"/admin/staff/{op.id}").get_data(as_text=True)
    assert "АТС" in page and "действует" in page and token not in page
    (row,) = services.tokens_of(op)
    assert client.post(f"/admin/staff/{op.id}/tokens", data={"name": "x", "expires_days": "0"}).status_code == 422
    other = make_user("operator")
    assert client.post(f"/admin/staff/{other.id}/tokens/{row.id}/revoke").status_code == 404  # not theirs
    client.post(f"/admin/staff/{op.id}/tokens/{row.id}/revoke")
    assert _api_status(client, token) == 401
    assert "отозван" in client.get(f"/admin/staff/{op.id}").get_data(as_text=True)
    services.issue_token(op, name="второй")
    client.post(f"/admin/staff/{op.id}/revoke-tokens")
    db.session.expire_all()
    assert all(t.revoked for t in services.tokens_of(op))


def test_the_forms_need_the_csrf_token(client, admin, make_user, monkeypatch):
    op = make_user("operator")
    monkeypatch.setitem(client.application.config, "WTF_CSRF_ENABLED", True)
    for path in ("disable", "end-sessions", "reset-password", "revoke-tokens"):
        assert client.post(f"/admin/staff/{op.id}/{path}").status_code == 400, path
    assert client.post(f"/admin/staff/{op.id}/role", data={"role": "admin"}).status_code == 400
    assert client.post("/admin/staff", data={"username": "x1", "role": "admin", "password": "long-enough-1"}).status_code == 400
    db.session.expire_all()
    user = db.session.get(User, op.id)
    assert user.active and user.role == "operator" and services.get_by_username("x1") is None


def test_admins_cannot_open_the_dpo_pages_nor_the_access_log_api(client, admin):
    rules = [r for r in client.application.url_map.iter_rules() if r.endpoint.startswith(("dpo.", "api_dpo."))]
    assert len(rules) >= 5
    opened = 0
    for rule in rules:
        url = rule.rule
        for arg in rule.arguments:
            url = re.sub(rf"<(?:[a-z]+:)?{arg}>", "1", url)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            resp = client.open(url, method=method)
            assert resp.status_code in (401, 403), (rule.endpoint, method, resp.status_code)
            opened += 1
    assert opened >= len(rules)
    # nor does any other route read the access log or the keys for them
    app = client.application
    sensitive = [r for r in app.url_map.iter_rules() if re.search(r"audit|access-log|/keys?\b|kek|keystore", r.rule)]
    assert sensitive
    for rule in sensitive:
        assert "admin" not in getattr(app.view_functions[rule.endpoint], "crm_roles", ("?",)), rule.rule


def test_the_dpos_accounts_are_changed_on_the_console_only(client, admin, make_user):
    """An administrator could otherwise sign in as the DPO (reset the password, issue a token), become
    one, or silence one: the page shows the account and refuses every such change."""
    dpo = make_user("dpo")
    html = client.get(f"/admin/staff/{dpo.id}").get_data(as_text=True)
    assert 'id="console-only"' in html and 'id="reset-password"' not in html and 'id="disable"' not in html
    resp = client.post(f"/admin/staff/{dpo.id}/reset-password", data={"form_key": "k1"}, follow_redirects=True)
    assert "только в консоли" in resp.get_data(as_text=True) and 'id="secret-value"' not in resp.get_data(as_text=True)
    resp = client.post(f"/admin/staff/{dpo.id}/tokens", data={"name": "x", "form_key": "k2"})
    assert resp.status_code == 422 and "только в консоли" in resp.get_data(as_text=True)
    client.post(f"/admin/staff/{dpo.id}/disable")
    assert client.post(f"/admin/staff/{dpo.id}/role", data={"role": "operator"}).status_code == 422
    op = make_user("operator")
    assert client.post(f"/admin/staff/{op.id}/role", data={"role": "dpo"}).status_code == 422
    assert client.post("/admin/staff", data={"username": "new_dpo", "role": "dpo", "password": "long-enough-1",
                                              "form_key": "k3"}).status_code == 422
    db.session.expire_all()
    assert db.session.get(User, dpo.id).active and db.session.get(User, dpo.id).role == "dpo"
    assert db.session.get(User, op.id).role == "operator" and services.get_by_username("new_dpo") is None
    assert not services.tokens_of(dpo) and services.authenticate(dpo.username, "correct-horse-1") is not None
    # ending a (possibly stolen) DPO session stays possible
    client.post(f"/admin/staff/{dpo.id}/end-sessions")
