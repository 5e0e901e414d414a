"""Staff second factor (issue 17 point 1): enrolment by QR code, sign-in with a TOTP code, wrong and
replayed codes refused, recovery codes spent once, an admin's reset forces a new enrolment."""
from __future__ import annotations

import re
import time

import pyotp
import pytest

from crm.db import db
from crm.security.models import AccessLogEntry
from crm.users import mfa
from crm.users import services as users
from crm.users.models import RecoveryCode, User
from tests import mfa as helper
from tests.clients import SharedContextClient


@pytest.fixture()
def client(ctx):
    """Requests share the test's app context: Flask-Login's cached user is dropped around each
    (tests.clients.SharedContextClient), so two clients in one test do not act as each other."""
    return SharedContextClient(ctx)

PASSWORD = "correct-horse-1"


def _password(client, user, **kw):
    return client.post("/login", data={"username": user.username, "password": PASSWORD}, **kw)


def _signed_in(client) -> bool:
    resp = client.get("/appeals")
    return resp.status_code == 200


def _actions(user_id=None, username=None) -> list[tuple[str, str]]:
    q = db.select(AccessLogEntry).order_by(AccessLogEntry.seq)
    rows = db.session.execute(q).scalars()
    return [(e.action, e.detail or "") for e in rows if username is None or e.actor == username]


def test_enrolment_then_sign_in_with_a_code(client, make_user):
    user = make_user("operator")
    resp = _password(client, user)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login/enrol")
    assert not _signed_in(client), "the password alone must not sign in"
    page = client.get("/login/enrol").get_data(as_text=True)
    assert 'src="data:image/svg+xml' in page  # the QR code, inline: nothing fetched
    secret = helper.secret_from_page(page)
    assert len(secret) == 32
    # the secret is stored encrypted, not in clear
    db.session.expire_all()
    row = db.session.get(User, user.id)
    assert row.totp_secret_enc is not None and secret.encode() not in row.totp_secret_enc
    assert row.totp_secret == secret and not row.mfa_enrolled
    # a wrong code: not enrolled, not signed in
    wrong = "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
    resp = client.post("/login/enrol", data={"code": wrong})
    assert resp.status_code == 200 and "Код не подошёл" in resp.get_data(as_text=True)
    assert not _signed_in(client)
    resp = client.post("/login/enrol", data={"code": pyotp.TOTP(secret).now()})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and 'id="mfa-recovery-codes"' in page
    codes = helper.recovery_codes_from_page(page)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert _signed_in(client)
    # the recovery codes are kept only as HMACs
    db.session.expire_all()
    stored = [r.code_hash for r in db.session.execute(db.select(RecoveryCode).where(RecoveryCode.user_id == user.id)).scalars()]
    assert len(stored) == 10 and not {c.replace("-", "") for c in codes} & set(stored)
    assert db.session.get(User, user.id).mfa_enrolled
    # the next sign-in asks for a code; the page that enrolled is gone
    assert client.post("/logout").status_code == 302
    helper.remember(user.username, secret, codes)
    helper.note_used_step(user.username, db.session.get(User, user.id).totp_last_step)
    resp = _password(client, user)
    assert resp.headers["Location"].endswith("/login/code")
    assert client.get("/login/enrol").headers["Location"].endswith("/login/code")
    assert not _signed_in(client)
    resp = client.post("/login/code", data={"code": helper.code_for(user.username)})
    assert resp.status_code == 302 and _signed_in(client)
    actions = [a for a, _ in _actions(username=user.username)]
    assert actions.count("auth.login") == 2 and "auth.mfa_enrol" in actions and "auth.mfa_failed" in actions


def test_wrong_and_replayed_codes_are_refused(client, make_user):
    user = make_user("operator")
    helper.sign_in(client, user)
    client.post("/logout")
    db.session.expire_all()
    row = db.session.get(User, user.id)
    used = row.totp_last_step
    secret = helper.secret_of(user.username)
    _password(client, user)
    # the code of the step enrolment used: a replay
    resp = client.post("/login/code", data={"code": pyotp.TOTP(secret).generate_otp(used)})
    assert resp.status_code == 200 and "уже использованный код" in resp.get_data(as_text=True)
    assert not _signed_in(client)
    resp = client.post("/login/code", data={"code": "12345"})
    assert resp.status_code == 200 and not _signed_in(client)
    # the service: the same code twice within its step, the second time refused
    now = (used + 1) * mfa.STEP_S + 1
    code = pyotp.TOTP(secret).generate_otp(used + 1)
    assert mfa.verify(row, code, now=now) == "totp"
    assert mfa.verify(row, code, now=now) is None
    # an older step (still inside the ±1 window) is refused once a later one was used
    assert mfa.verify(row, pyotp.TOTP(secret).generate_otp(used), now=now) is None
    details = [d for a, d in _actions(username=user.username) if a == "auth.mfa_failed"]
    assert any("replay" in d for d in details)


def test_a_recovery_code_works_once(client, make_user):
    user = make_user("supervisor")
    helper.sign_in(client, user)
    codes = list(helper._RECOVERY[user.username])
    client.post("/logout")
    _password(client, user)
    resp = client.post("/login/code", data={"code": codes[0].upper().replace("-", " ")})  # as typed from paper
    assert resp.status_code == 302 and _signed_in(client)
    client.post("/logout")
    _password(client, user)
    resp = client.post("/login/code", data={"code": codes[0]})
    assert resp.status_code == 200 and not _signed_in(client)
    db.session.expire_all()
    assert mfa.recovery_codes_left(db.session.get(User, user.id)) == 9
    assert ("auth.recovery_code_used", f"user={user.id} remaining=9") in _actions(username=user.username)


def test_admin_reset_forces_a_new_enrolment_and_ends_sessions(client, make_user, runner, ctx):
    user = make_user("operator")
    admin = make_user("admin")
    helper.sign_in(client, user)
    old_secret = helper.secret_of(user.username)
    assert _signed_in(client)
    admin_client = SharedContextClient(ctx)
    helper.sign_in(admin_client, admin)
    # an operator may not reset anyone's second factor
    assert client.post(f"/admin/staff/{admin.id}/reset-2fa").status_code == 403
    assert "не настроен" not in admin_client.get(f"/admin/staff/{user.id}").get_data(as_text=True)
    resp = admin_client.post(f"/admin/staff/{user.id}/reset-2fa")
    assert resp.status_code == 302 and resp.headers["Location"] == f"/admin/staff/{user.id}"
    page = admin_client.get(f"/admin/staff/{user.id}").get_data(as_text=True)
    assert "Второй фактор сброшен" in page and "не настроен" in page
    assert not _signed_in(client), "a reset ends the staff member's sessions"
    db.session.expire_all()
    row = db.session.get(User, user.id)
    assert row.totp_secret_enc is None and not row.mfa_enrolled and mfa.recovery_codes_left(row) == 0
    assert ("auth.mfa_reset", f"user={user.id}") in _actions(username=admin.username)
    resp = _password(client, user)
    assert resp.headers["Location"].endswith("/login/enrol")
    assert helper.secret_from_page(client.get("/login/enrol").get_data(as_text=True)) != old_secret
    # and from the command line
    helper.sign_in(SharedContextClient(ctx), user)
    result = runner("users", "reset-2fa", user.username)
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert not db.session.get(User, user.id).mfa_enrolled
    assert runner("users", "reset-2fa", "nobody-such").exit_code != 0


def test_a_pending_sign_in_expires_and_does_not_survive_a_revocation(client, make_user, ctx, monkeypatch):
    user = make_user("operator")
    helper.sign_in(SharedContextClient(ctx), user)
    _password(client, user)
    # revoked in between (e.g. the account's sessions were ended): the code step starts over
    db.session.expire_all()
    users.end_sessions(db.session.get(User, user.id))
    resp = client.post("/login/code", data={"code": helper.code_for(user.username)})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login") and not _signed_in(client)
    _password(client, user)
    monkeypatch.setitem(ctx.config, "CRM_MFA_PENDING_S", 0)
    time.sleep(0.01)
    resp = client.get("/login/code")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login")
    # the code page without a password step
    fresh = SharedContextClient(ctx)
    assert fresh.get("/login/code").headers["Location"].endswith("/login")


def test_the_mfa_key_is_kept_by_key_gc(ctx, make_user, client):
    """The secret's data key belongs to the account (a declared key owner): ``crm keys gc`` does not
    take it for an orphan."""
    from crm.security import registry

    user = make_user("operator")
    helper.sign_in(client, user)
    db.session.expire_all()
    owner = db.session.get(User, user.id).mfa_key_owner
    assert owner and owner in registry.known_owners([owner])


def test_an_enrolment_page_shows_the_issuer_and_account(client, make_user):
    user = make_user("operator")
    _password(client, user)
    page = client.get("/login/enrol").get_data(as_text=True)
    secret = helper.secret_from_page(page)
    row = db.session.get(User, user.id)
    uri = mfa.provisioning_uri(row, secret)
    assert uri.startswith("otpauth://totp/") and user.username in uri and f"secret={secret}" in uri
    assert re.search(r"issuer=%D0%93", uri)  # «Горячая линия ЖКХ», percent-encoded


def test_demo_users_are_pre_enrolled_with_a_printed_secret(client, ctx):
    """``crm demo-data`` prints each demo login's TOTP secret; the code made from it signs in."""
    from crm.demo import load_demo

    out = "\n".join(load_demo(with_call=False))
    found = re.search(r"login: operator\s+password: (\S+)\s+TOTP secret: ([A-Z2-7]{32})", out)
    assert found, out
    password, secret = found.groups()
    resp = client.post("/login", data={"username": "operator", "password": password})
    assert resp.headers["Location"].endswith("/login/code")
    helper.remember("operator", secret)
    resp = client.post("/login/code", data={"code": helper.code_for("operator")})
    assert resp.status_code == 302 and _signed_in(client)
    # a second run prints the same secret again
    assert secret in "\n".join(load_demo(with_call=False))
