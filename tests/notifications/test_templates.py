"""The texts of citizen notifications: per event, status and channel in one place, editable by
supervisors on «Шаблоны уведомлений» (issue 15, point 2)."""
from __future__ import annotations

import sqlalchemy as sa

from crm.db import db
from tests.clients import SharedContextClient
from tests.factories import AppealFactory, CitizenFactory


def test_templates_per_status_and_channel_mask_the_comment_at_rest():
    from crm.notifications import templates

    r = templates.render("status", "sms", variant="resolved", number="2026-00042", status="выполнено",
                         comment="Заменили стояк")
    assert r.text == "Горячая линия ЖКХ: работы по заявке № 2026-00042 выполнены. Комментарий: Заменили стояк"
    assert r.shown == "Горячая линия ЖКХ: работы по заявке № 2026-00042 выполнены. Комментарий: ***"
    assert r.subject is None
    plain = templates.render("status", "sms", variant="in_progress", number="2026-00042", status="в работе")
    assert plain.text == plain.shown == "Горячая линия ЖКХ: заявка № 2026-00042 — в работе."
    mail = templates.render("registered", "email", number="2026-00042")
    assert mail.subject == "Обращение № 2026-00042 зарегистрировано" and "2026-00042" in mail.text
    # a deployment's override with a typo falls back to the built-in text
    bad = templates.render("registered", "sms", number="7", overrides={"registered:sms": "№ {nomer}"})
    assert bad.text.startswith("Горячая линия ЖКХ: обращение зарегистрировано, № 7")


def test_a_supervisor_edits_a_template_and_the_next_message_uses_it(ctx, make_user):
    from crm.consent import services as consent
    from crm.consent.models import SmsMessage
    from crm.notifications import services
    from crm.security.models import AccessLogEntry

    sup, op = make_user("supervisor"), make_user("operator")
    page = SharedContextClient(ctx, sup)
    html = page.get("/notification-templates").get_data(as_text=True)
    assert 'data-template="status:sms"' in html and 'data-template="registered:email"' in html
    assert SharedContextClient(ctx, op).get("/notification-templates").status_code == 403

    # refused: an unknown placeholder, an unpaired brace, an empty subject; nothing saved
    resp = page.post("/notification-templates/status:sms", data={"action": "save", "body": "УК: {fio}, заявка {number}"})
    assert resp.status_code == 422 and "неизвестные подстановки: {fio}" in resp.get_data(as_text=True)
    resp = page.post("/notification-templates/status:sms", data={"action": "save", "body": "УК: заявка {number"})
    assert resp.status_code == 422 and "непарная фигурная скобка" in resp.get_data(as_text=True)
    resp = page.post("/notification-templates/registered:email", data={"action": "save", "subject": " ",
                                                                        "body": "№ {number}"})
    assert resp.status_code == 422 and "не может быть пустым" in resp.get_data(as_text=True)
    assert services.template_overrides() == {}

    resp = page.post("/notification-templates/status:sms",
                     data={"action": "save", "body": "УК «Пример»: заявка {number} — {status}.{comment_part}"})
    assert resp.status_code == 302
    logged = db.session.execute(sa.select(AccessLogEntry).where(
        AccessLogEntry.action == "notification.template_update")).scalars().all()
    assert [(e.detail, e.actor_id) for e in logged] == [("status:sms", sup.id)]

    c = CitizenFactory(phone="+7 912 515-44-55")
    consent.record(c, "sms_notifications", channel="call", operator_id=op.id)
    appeal = AppealFactory(citizen=c, operator=op)
    [msg] = services.notify_status(appeal.id, c.id, "ev-1", number=appeal.number, status="in_progress",
                                   status_label="в работе", comment="Мастер придёт в 10")
    assert msg.body == f"УК «Пример»: заявка {appeal.number} — в работе. Комментарий: ***"
    assert msg.sealed_body == f"УК «Пример»: заявка {appeal.number} — в работе. Комментарий: Мастер придёт в 10"
    # a more specific built-in template (resolved) is not overridden by the general one
    [resolved] = services.notify_status(appeal.id, c.id, "ev-2", number=appeal.number, status="resolved",
                                        status_label="выполнено")
    assert resolved.body.startswith("Горячая линия ЖКХ: работы по заявке")

    assert page.post("/notification-templates/status:sms", data={"action": "reset"}).status_code == 302
    assert services.template_overrides() == {}
    assert page.post("/notification-templates/no:such", data={"action": "save", "body": "x"}).status_code == 404
    db.session.execute(sa.delete(SmsMessage))
    db.session.commit()
