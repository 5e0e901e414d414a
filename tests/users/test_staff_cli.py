"""``crm users …`` (design.md "Added interfaces": disable, role, token --expires-days, revoke-tokens;
and list, enable, reset-password, end-sessions, tokens, revoke-token)."""
from __future__ import annotations

from crm.users import services


def test_list_disable_enable(runner, make_user):
    make_user("admin", username="boss")
    op = make_user("operator", username="olga")
    out = runner("users", "list")
    assert out.exit_code == 0, out.output
    lines = {line.split("\t")[0]: line for line in out.output.splitlines()}
    assert "\toperator\tactive\t" in lines["olga"] and "last sign-in —" in lines["olga"]
    out = runner("users", "disable", "olga")
    assert out.exit_code == 0 and "disabled olga" in out.output
    assert services.get(op.id).active is False
    assert "\tdisabled\t" in runner("users", "list", "--role", "operator").output
    assert "already disabled" in runner("users", "disable", "olga").output
    assert "enabled olga" in runner("users", "enable", "olga").output
    assert services.get(op.id).active is True
    assert runner("users", "disable", "nobody").exit_code == 1


def test_the_last_admin_is_protected_on_the_console(runner, make_user):
    make_user("admin", username="boss")
    out = runner("users", "disable", "boss")
    assert out.exit_code == 1 and "последний активный администратор" in out.output
    out = runner("users", "role", "boss", "operator")
    assert out.exit_code == 1 and "последний активный администратор" in out.output
    assert services.get_by_username("boss").role == "admin"


def test_role(runner, make_user):
    op = make_user("operator", username="olga")
    out = runner("users", "role", "olga", "supervisor")
    assert out.exit_code == 0 and "olga: role supervisor" in out.output
    assert services.get(op.id).role == "supervisor"
    out = runner("users", "role", "olga", "root")
    assert out.exit_code == 1 and "неизвестная роль" in out.output


def test_token_with_name_and_expiry_then_revoke(runner, make_user, client):
    make_user("operator", username="olga")
    out = runner("users", "token", "olga", "--expires-days", "30", "--name", "АТС")
    assert out.exit_code == 0, out.output
    token = out.output.strip()
    assert client.get("/api/v1/executors", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    listing = runner("users", "tokens", "olga").output
    assert "\tАТС\t" in listing and "\tactive" in listing and "last used 20" in listing and token not in listing
    assert runner("users", "token", "olga", "--expires-days", "0").exit_code == 2  # click refuses the range
    out = runner("users", "revoke-tokens", "olga")
    assert out.exit_code == 0 and "revoked 1 tokens of olga" in out.output
    assert client.get("/api/v1/executors", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert "\trevoked" in runner("users", "tokens", "olga").output


def test_revoke_one_token(runner, make_user):
    op = make_user("operator", username="olga")
    services.issue_token(op, name="a")
    tid = services.tokens_of(op)[0].id
    out = runner("users", "revoke-token", str(tid))
    assert out.exit_code == 0 and f"revoked token {tid}" in out.output
    assert services.tokens_of(op)[0].revoked
    assert runner("users", "revoke-token", "999999").exit_code == 1


def test_reset_password_and_end_sessions(runner, make_user):
    op = make_user("operator", username="olga")
    login_id = op.get_id()
    out = runner("users", "reset-password", "olga")
    assert out.exit_code == 0
    temporary = out.output.strip()
    assert services.authenticate("olga", temporary) is not None
    assert services.valid_login_id(login_id) is None
    out = runner("users", "reset-password", "olga", "--password-stdin", input="another-horse-2\n")
    assert out.exit_code == 0 and "another-horse-2" not in out.output
    assert services.authenticate("olga", "another-horse-2") is not None
    login_id = services.get(op.id).get_id()
    assert "sessions of olga ended" in runner("users", "end-sessions", "olga").output
    assert services.valid_login_id(login_id) is None
