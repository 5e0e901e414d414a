"""The telephony pages: «Обратные звонки» (reveal the number, logged; record an attempt) and the
supervisors' «Очередь звонков»."""
from __future__ import annotations

import uuid
from datetime import timedelta

import sqlalchemy as sa

from tests.clients import SharedContextClient

NUMBER = "+79165550101"


def abandoned(call_id: str) -> str:
    from crm.db import utcnow
    from crm.telephony import services

    now = utcnow()
    for kind, back in (("newCall", 90), ("hangup", 50)):
        services.ingest(services.Event(event_id=f"{call_id}-{kind}-{uuid.uuid4().hex[:4]}", type=kind, call_id=call_id,
                                       at=now - timedelta(seconds=back), from_=NUMBER, to="+74951112233"))
    return services.get(call_id).id


def test_operator_reveals_and_records_a_callback(ctx, make_user):
    from crm.db import db
    from crm.security.models import AccessLogEntry
    from crm.telephony import services

    user = make_user("operator")
    record_id = abandoned("page-1")
    web = SharedContextClient(ctx, user)
    page = web.get("/telephony/callbacks").get_data(as_text=True)
    assert "Обратные звонки" in page and "page-1" in page and "9165550101" not in page
    shown = web.post(f"/telephony/callbacks/{record_id}/reveal").get_data(as_text=True)
    assert "+7 916 555-01-01" in shown and "+79165550101" not in shown  # formatted as the product shows phones
    reveal = db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action == "telephony.reveal")).scalar_one()
    assert reveal.actor_id == user.id and reveal.fields == "phone"
    resp = web.post(f"/telephony/callbacks/{record_id}/attempt", data={"outcome": "busy"})
    assert resp.status_code == 302
    db.session.expire_all()
    assert services.by_id(record_id).callback_done_at is None
    web.post(f"/telephony/callbacks/{record_id}/attempt", data={"outcome": "reached"})
    db.session.expire_all()
    assert services.by_id(record_id).callback_done_at is not None
    assert "Перезванивать некому." in web.get("/telephony/callbacks").get_data(as_text=True)
    # called back: off the worklist, so its number is no longer shown to anyone (issue 13 re-audit L4)
    assert web.post(f"/telephony/callbacks/{record_id}/reveal").status_code == 404


def test_queue_board_page_for_supervisors_only(ctx, make_user):
    from crm.db import utcnow
    from crm.timeutil import local_date

    operator = make_user("operator", username="ivanova")
    operator.full_name = "Иванова Мария Петровна"
    from crm.db import db
    db.session.commit()
    sup = SharedContextClient(ctx, make_user("supervisor"))
    page = sup.get("/telephony/queue")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Очередь звонков" in html and "queue.js" in html and 'data-figure="service_level"' in html
    # the date as Russian pages write it, the operators by their full names (new-user trial)
    assert f"Сегодня, {local_date(utcnow()):%d.%m.%Y}." in html and local_date(utcnow()).isoformat() not in html
    assert '<td title="ivanova">Иванова Мария Петровна</td>' in html
    op = SharedContextClient(ctx, make_user("operator"))
    assert op.get("/telephony/queue").status_code == 403
    # the board's script polls the API with the browser's session
    assert sup.get("/api/v1/telephony/queue").status_code == 200


def test_the_pbx_is_named_in_russian_in_the_access_log(ctx, make_user):
    """The webhook logs as ``pbx:<source>`` (crm.telephony.api): the DPO's access log and report name it
    «АТС (события телефонии)», not the raw code (new-user trial)."""
    from crm.db import db
    from crm.security import audit

    assert audit.actor_label("pbx:default") == "АТС (события телефонии)"
    assert audit.actor_label("pbx:asterisk-1") == "АТС «asterisk-1» (события телефонии)"
    with audit.acting_as(audit.Actor(None, "pbx:default", "system")):
        audit.record("telephony.match", fields=["phone"], purpose="appeal_processing", detail="callbacks compared=1")
    db.session.commit()
    dpo = SharedContextClient(ctx, make_user("dpo"))
    page = dpo.get("/dpo/access-log").get_data(as_text=True)
    assert "АТС (события телефонии)" in page
    filtered = dpo.get("/dpo/access-log?actor=pbx:default").get_data(as_text=True)
    assert "АТС (события телефонии)" in filtered


def test_the_outbox_names_purposes_and_statuses_in_russian(ctx, make_user):
    """«Исходящие SMS» shows each message's purpose by its name in the register and its status by its
    label, not the codes ``sms_notifications`` / ``logged`` (new-user trial)."""
    import re

    from crm.consent import services as consent
    from crm.consent import sms
    from tests.factories import CitizenFactory

    citizen = CitizenFactory(phone="+79990000077")
    sms.send(citizen, purpose="sms_notifications", kind="status", body="Ваше обращение принято")
    html = SharedContextClient(ctx, make_user("dpo")).get("/dpo/sms-outbox").get_data(as_text=True)
    row = re.search(r"<tr><td>[^<]*</td>.*?Ваше обращение принято.*?</tr>", html, flags=re.S).group(0)
    assert consent.purpose_label("sms_notifications") in row and ">sms_notifications<" not in row
    assert "в журнале (не отправлено)" in row and ">logged<" not in row
