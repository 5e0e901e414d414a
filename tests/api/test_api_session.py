"""The API is stateless, and opening an API URL in a signed-in browser does not sign it out."""
from __future__ import annotations

from tests.factories import CitizenFactory


def test_browser_keeps_its_sign_in_after_opening_api_urls(client, make_user, login, api_token):
    op, admin = make_user("operator"), make_user("admin")
    login(op)
    assert client.get("/operator").status_code == 200
    resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    assert "session=;" not in resp.headers.get("Set-Cookie", "")
    # a call with another user's token, from the same browser: answered as the token's user ...
    resp = client.get("/api/v1/audit", headers=api_token(admin))
    assert resp.status_code in (200, 403)
    assert "Set-Cookie" not in resp.headers
    # ... and the browser is still the operator, signed in
    assert client.get("/operator").status_code == 200


def test_token_calls_set_no_cookie(ctx, make_user, api_token):
    client = ctx.test_client()
    resp = client.get("/api/v1/openapi.json", headers=api_token(make_user("operator")))
    assert resp.status_code == 200
    assert "Set-Cookie" not in resp.headers


def test_entries_written_outside_a_request_name_the_command(ctx):
    """`crm demo-data` and other commands log as «команда администратора», not as an anonymous
    visitor (a DPO reading the log took demo registrations for access without sign-in)."""
    from crm.db import db
    from crm.security.models import AccessLogEntry

    CitizenFactory(full_name="Орлова Вера Петровна", phone="+7 912 000-12-34")
    row = db.session.execute(db.select(AccessLogEntry).where(AccessLogEntry.action == "citizen.create")).scalar_one()
    assert (row.actor, row.actor_role) == ("job:cli", "system")
