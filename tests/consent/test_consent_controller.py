"""The operator of personal data (controller) named in every consent text (152-ФЗ ст. 9 ч. 4):
without ``CRM_CONTROLLER_NAME`` / ``CRM_CONTROLLER_ADDRESS`` no consent is recorded (no placeholder
is ever stored), the operator is told so in Russian on the page and in the API, the operator pages
carry a warning, the start-up check logs one; ``crm init`` writes commented settings and
``crm demo-data`` a clearly fictitious demo controller."""
from __future__ import annotations

import logging
import uuid

import pytest

from crm.db import db
from tests.factories import CitizenFactory

NAME, PHONE = "Безоператорова Анна Ильинична", "+7 912 555-01-02"


@pytest.fixture()
def unconfigured(ctx, monkeypatch):
    monkeypatch.setitem(ctx.config, "CRM_CONTROLLER_NAME", None)
    monkeypatch.setitem(ctx.config, "CRM_CONTROLLER_ADDRESS", "")
    return ctx


def _events():
    from crm.consent.models import ConsentEvent

    return db.session.execute(db.select(ConsentEvent)).scalars().all()


def test_record_refuses_without_controller(unconfigured):
    from crm.consent import services as consent
    import sqlalchemy as sa

    c = CitizenFactory(full_name=NAME, phone=PHONE, sadovaya=True)
    count = "SELECT count(*) FROM access_log WHERE action LIKE 'consent.%'"
    before = db.session.execute(sa.text(count)).scalar()
    for given in (True, False):
        with pytest.raises(consent.ConsentError) as exc:
            consent.record(c, "sms_notifications", channel="call", given=given)
        assert exc.value.code == "controller_not_configured"
        assert "оператора" in str(exc.value) and "CRM_CONTROLLER_NAME" in str(exc.value)
    db.session.rollback()
    assert _events() == []
    assert db.session.execute(sa.text(count)).scalar() == before == 0
    assert not consent.controller_configured()


def test_api_refuses_with_stable_code(unconfigured, client, make_user, api_token):
    c = CitizenFactory(full_name=NAME, phone=PHONE, sadovaya=True)
    resp = client.post(f"/api/v1/citizens/{c.id}/consents", json={"purpose": "sms_notifications", "channel": "call"},
                       headers=api_token(make_user("operator")))
    assert resp.status_code == 409, resp.get_data(as_text=True)
    err = resp.get_json()["error"]
    assert err["code"] == "controller_not_configured"
    assert "наименование и адрес оператора" in err["message"]
    assert _events() == []


def test_operator_pages_warn_and_refuse(unconfigured, client, make_user, login):
    from crm.appeals import services as appeals

    op = make_user("operator")
    login(op)
    page = client.get("/operator").get_data(as_text=True)
    assert 'id="controller-not-configured"' in page and "CRM_CONTROLLER_NAME" in page
    c = CitizenFactory(full_name=NAME, phone=PHONE, sadovaya=True)
    assert 'id="controller-not-configured"' in client.get(f"/citizens/{c.id}/appeals/new").get_data(as_text=True)
    # the appeal is registered; the consent answers are not, and the operator is told why
    resp = client.post(f"/citizens/{c.id}/appeals/new", content_type="multipart/form-data", follow_redirects=True,
                       data={"submission_key": uuid.uuid4().hex, "category": "emergency", "topic": "hot_water",
                             "channel": "phone", "description": "Нет горячей воды.", "consent_sms": "yes",
                             "consent_recording": "no"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "зарегистрировано" in html
    assert "Ответ о согласии не записан" in html and 'id="controller-not-configured"' in html
    assert _events() == []
    appeal = appeals.recent(limit=1)[0]
    resp = client.post(f"/appeals/{appeal.id}/consents", data={"purpose": "call_recording_qa", "given": "yes"},
                       follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert "Согласие записано" not in html and "наименование и адрес оператора" in html
    assert _events() == []


def test_no_banner_when_configured(ctx, client, make_user, login):
    from crm.consent.startup import check_controller

    login(make_user("operator"))
    assert 'id="controller-not-configured"' not in client.get("/operator").get_data(as_text=True)
    assert check_controller(ctx) is True


def test_startup_check_logs_warning(unconfigured, caplog):
    from crm.consent.startup import check_controller

    with caplog.at_level(logging.WARNING):
        assert check_controller(unconfigured) is False
    assert "CRM_CONTROLLER_NAME" in caplog.text


def test_the_web_app_warns_at_its_first_request_not_when_made(app_config, caplog):
    """An app without the controller logs the warning once, when it serves its first request (the
    web app, `crm run`), not when it is made: `crm transcribe` and the other commands that record no
    consent print no warning (tests/calls/transcription/test_transcription_cli.py)."""
    from crm import create_app

    with caplog.at_level(logging.WARNING):
        bare = create_app({**app_config, "CRM_CONTROLLER_NAME": None, "CRM_CONTROLLER_ADDRESS": ""})
        assert "CRM_CONTROLLER_NAME" not in caplog.text
        web = bare.test_client()
        for _ in range(3):
            assert web.get("/healthz").status_code == 200
    assert caplog.text.count("CRM_CONTROLLER_NAME") == 1


def test_init_writes_commented_controller_settings(ctx, tmp_path, monkeypatch, runner):
    monkeypatch.setattr(ctx, "instance_path", str(tmp_path / "instance"))
    monkeypatch.setitem(ctx.config, "SECRET_KEY", ctx.config["SECRET_KEY"])  # init loads the new file
    result = runner("init")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "instance" / "config.py").read_text()
    assert "# CRM_CONTROLLER_NAME = " in text and "# CRM_CONTROLLER_ADDRESS = " in text and "152-ФЗ" in text
    assert ctx.config["CRM_CONTROLLER_NAME"] == "ООО «УК Тестовая»"  # commented: nothing set by init
    ns: dict = {}
    exec(text.replace("# CRM_CONTROLLER", "CRM_CONTROLLER"), ns)  # uncommented, it is valid Python
    assert ns["CRM_CONTROLLER_NAME"] and ns["CRM_CONTROLLER_ADDRESS"]


def test_demo_data_sets_a_fictitious_controller(unconfigured, tmp_path, monkeypatch, runner):
    from crm.cli import DEMO_CONTROLLER

    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "config.py").write_text("SECRET_KEY = 'x'\n# CRM_CONTROLLER_NAME = \"...\"\n")
    monkeypatch.setattr(unconfigured, "instance_path", str(instance))
    result = runner("demo-data", "--no-call")
    assert result.exit_code == 0, result.output
    ns: dict = {}
    exec((instance / "config.py").read_text(), ns)
    assert (ns["CRM_CONTROLLER_NAME"], ns["CRM_CONTROLLER_ADDRESS"]) == DEMO_CONTROLLER
    assert "демонстрационные данные" in DEMO_CONTROLLER[0] and "демонстрационные данные" in DEMO_CONTROLLER[1]
    events = _events()
    assert events and all(e.controller_name == DEMO_CONTROLLER[0] for e in events)
    assert all("не задан" not in e.controller_address for e in events)
    # a second run leaves the file alone (the controller is now configured)
    before = (instance / "config.py").read_text()
    assert runner("demo-data", "--no-call").exit_code == 0
    assert (instance / "config.py").read_text() == before
