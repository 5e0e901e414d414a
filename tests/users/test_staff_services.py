"""Staff administration services (issue 17 point 4): disable, enable, role, password, sessions,
named and expiring API tokens, each logged; the last active administrator stays one; the API
refuses a disabled user's, an expired and a revoked token."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from crm.db import db, utcnow
from crm.security.models import AccessLogEntry
from crm.users import services
from crm.users.models import ApiToken
from crm.users.services import UserError

URL = "/api/v1/executors"


def _actions(action: str) -> list[AccessLogEntry]:
    return list(db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action == action)).scalars())


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_a_disabled_users_token_is_refused_and_enabling_brings_it_back(client, make_user):
    admin, op = make_user("admin"), make_user("operator")
    token = services.issue_token(op, name="АТС")
    assert client.get(URL, headers=_bearer(token)).status_code == 200
    assert services.disable_user(op, admin) is True
    resp = client.get(URL, headers=_bearer(token))
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "unauthorized"
    assert services.authenticate(op.username, "correct-horse-1") is None
    assert services.disable_user(op, admin) is False  # a double click: nothing more
    assert len(_actions("user.disable")) == 1
    assert services.enable_user(op, admin) is True
    assert client.get(URL, headers=_bearer(token)).status_code == 200


def test_an_expired_token_is_refused(client, make_user):
    op = make_user("operator")
    token = services.issue_token(op, name="IVR", expires_days=1)
    row = db.session.execute(sa.select(ApiToken)).scalar_one()
    assert row.name == "IVR" and row.expires_at > utcnow() + timedelta(hours=23)
    assert client.get(URL, headers=_bearer(token)).status_code == 200
    assert row.last_used_at is not None
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert services.token_expired(row)
    assert client.get(URL, headers=_bearer(token)).status_code == 401
    assert services.user_for_token(token) is None


def test_token_expiry_and_name_are_checked(make_user):
    op = make_user("operator")
    for kwargs in ({"expires_days": 0}, {"expires_days": -3}, {"expires_days": services.TOKEN_MAX_DAYS + 1},
                   {"name": "x" * 101}):
        with pytest.raises(UserError):
            services.issue_token(op, **kwargs)
    assert db.session.execute(sa.select(sa.func.count()).select_from(ApiToken)).scalar() == 0


def test_no_token_for_a_disabled_account(make_user):
    admin, op = make_user("admin"), make_user("operator")
    services.disable_user(op, admin)
    with pytest.raises(UserError):
        services.issue_token(op)


def test_revoke_one_token_and_all_tokens(client, make_user):
    admin, op = make_user("admin"), make_user("operator")
    t1, t2, t3 = (services.issue_token(op, name=n) for n in ("a", "b", "c"))
    first = services.tokens_of(op)[-1]
    assert first.name == "a"
    services.revoke_token(first.id, admin)
    services.revoke_token(first.id, admin)  # a double click logs once
    assert client.get(URL, headers=_bearer(t1)).status_code == 401
    assert client.get(URL, headers=_bearer(t2)).status_code == 200
    assert services.revoke_tokens(op, admin) == 2
    assert client.get(URL, headers=_bearer(t3)).status_code == 401
    entries = _actions("token.revoke")
    assert len(entries) == 2 and all(e.actor_id == admin.id for e in entries)
    with pytest.raises(UserError):
        services.revoke_token(999_999, admin)


def test_disable_and_role_change_end_the_sessions(make_user):
    admin, op = make_user("admin"), make_user("operator")
    login_id = op.get_id()
    assert services.valid_login_id(login_id) is not None
    services.change_role(op, "supervisor", admin)
    assert op.role == "supervisor" and services.valid_login_id(login_id) is None
    login_id = op.get_id()
    services.disable_user(op, admin)
    assert services.valid_login_id(login_id) is None
    (entry,) = _actions("user.role")
    assert entry.detail == f"user={op.id} role=operator->supervisor" and entry.actor_id == admin.id
    assert len(_actions("user.end_sessions")) == 2


def test_end_sessions_alone(make_user):
    admin, op = make_user("admin"), make_user("operator")
    login_id = op.get_id()
    services.end_sessions(op, admin)
    assert services.valid_login_id(login_id) is None and services.valid_login_id(op.get_id()) is not None


def test_reset_password_gives_a_temporary_password_and_ends_sessions(make_user):
    admin, op = make_user("admin"), make_user("operator")
    login_id = op.get_id()
    temporary = services.reset_password(op, admin)
    assert len(temporary) >= 12
    assert services.valid_login_id(login_id) is None
    assert services.authenticate(op.username, "correct-horse-1") is None
    assert services.authenticate(op.username, temporary) is not None
    assert op.last_login_at is None  # the password alone is not a sign-in: the second factor completes it
    services.complete_sign_in(op, "totp")
    assert op.last_login_at is not None
    with pytest.raises(UserError):
        services.reset_password(op, admin, password="short")
    assert len(_actions("user.password_reset")) == 1


def test_nobody_disables_their_own_account(make_user):
    a1, _a2 = make_user("admin"), make_user("admin")
    with pytest.raises(UserError, match="собственную"):
        services.disable_user(a1, a1)
    assert a1.active


def test_the_last_active_admin_is_neither_disabled_nor_demoted(make_user):
    a1, a2, op = make_user("admin"), make_user("admin"), make_user("operator")
    services.disable_user(a2, a1)  # two admins: allowed
    with pytest.raises(UserError, match="последний"):
        services.disable_user(a1, None)  # from the console too
    with pytest.raises(UserError, match="последний"):
        services.change_role(a1, "operator", None)
    assert a1.active and a1.role == "admin"
    services.change_role(op, "admin", a1)  # a second admin again …
    services.change_role(a1, "operator", op)  # … so the first may step down
    assert a1.role == "operator"
    # a disabled admin does not count as one
    services.enable_user(a2, op)
    services.disable_user(a2, op)
    with pytest.raises(UserError):
        services.change_role(op, "supervisor", None)


def test_change_role_checks_the_role_and_the_executor(make_user):
    admin, op = make_user("admin"), make_user("operator")
    with pytest.raises(UserError):
        services.change_role(op, "root", admin)
    with pytest.raises(UserError):
        services.change_role(op, "executor", admin)  # no executor named
    with pytest.raises(UserError):
        services.change_role(op, "supervisor", admin, executor_id=1)
    assert services.change_role(op, "operator", admin) is False
    assert op.role == "operator" and not _actions("user.role")


def test_creation_names_the_admin_who_created(make_user):
    admin = make_user("admin")
    user = services.create_user("new_operator", "operator", "correct-horse-1", actor=admin)
    entry = [e for e in _actions("user.create") if e.detail.startswith(f"user={user.id} ")][0]
    assert entry.actor_id == admin.id and entry.actor == admin.username


def test_two_admins_disabling_each_other_at_once_leave_one(ctx, make_user):
    """Both requests lock the administrators' rows in the same order: one disables the other, the
    second then counts again and is refused — never none left, never a deadlock (PostgreSQL)."""
    import threading

    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    for _round in range(3):
        a1, a2 = make_user("admin"), make_user("admin")
        ids = (a1.id, a2.id)
        db.session.commit()
        barrier, outcomes = threading.Barrier(2), []

        def disable(target_id: int, actor_id: int) -> None:
            with ctx.app_context():
                target, actor = services.get(target_id), services.get(actor_id)
                barrier.wait()
                try:
                    services.disable_user(target, actor)
                    outcomes.append("ok")
                except UserError:
                    outcomes.append("refused")
                except Exception as exc:  # a deadlock would land here
                    outcomes.append(type(exc).__name__)
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=disable, args=(ids[0], ids[1])),
                   threading.Thread(target=disable, args=(ids[1], ids[0]))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcomes) == ["ok", "refused"], outcomes
        db.session.expire_all()
        assert sum(services.get(i).active for i in ids) == 1
        db.session.execute(sa.update(services.User).where(services.User.id.in_(ids)).values(role="operator"))
        db.session.commit()


def test_a_signed_in_admin_cannot_touch_the_dpos_account_nor_give_the_role(make_user):
    admin, dpo, op = make_user("admin"), make_user("dpo"), make_user("operator")
    calls = [lambda: services.reset_password(dpo, admin), lambda: services.issue_token(dpo, actor=admin),
             lambda: services.disable_user(dpo, admin), lambda: services.change_role(dpo, "operator", admin),
             lambda: services.change_role(op, "dpo", admin),
             lambda: services.create_user("dpo2", "dpo", "correct-horse-1", actor=admin)]
    for call in calls:
        with pytest.raises(UserError, match="только в консоли"):
            call()
    with pytest.raises(UserError, match="собственной"):
        services.change_role(admin, "supervisor", admin)
    assert dpo.active and dpo.role == "dpo" and op.role == "operator" and not services.tokens_of(dpo)
    services.end_sessions(dpo, admin)  # allowed: a stolen session can be ended
    # the console (actor None) may
    services.issue_token(dpo, name="аудит")
    services.change_role(op, "dpo")
    services.disable_user(dpo)
    services.enable_user(dpo)
    assert op.role == "dpo" and dpo.active
