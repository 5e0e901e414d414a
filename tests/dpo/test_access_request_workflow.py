"""An access request (152-ФЗ ст. 14) is answered only after the subject's identity is established and
a second DPO approved: the DPO records how the identity was verified (the document seen — never its
number — or a self-service SMS code), another DPO approves, and the export goes to the citizen, printed
in person or downloaded on the self-service page after an SMS code; every step is in the access log.
The DPO's view of the request shows the categories and how much of each, not the texts.

Runs on SQLite + embedded Redis by default and on PostgreSQL + Redis with ``DATABASE_URL`` /
``REDIS_URL`` set (CSRF is off in the ``app`` fixture).
"""
from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa

from crm.db import db
from tests.clients import SharedContextClient
from tests.factories import AppealFactory, CallFactory, CitizenFactory

NAME, PHONE = "Запросова Инна Олеговна", "+7 912 606-70-80"
OTHER_NAME, OTHER_PHONE = "Чужакова Ольга Ивановна", "+7 903 222-33-44"
TEXTS = ("Течёт крыша над кухней", "Нет отопления в детской", "Не работает домофон")


def entries(since: int = 0, **where) -> list:
    from crm.security.models import AccessLogEntry

    db.session.commit()
    q = sa.select(AccessLogEntry).where(AccessLogEntry.seq > since).order_by(AccessLogEntry.seq)
    for k, v in where.items():
        q = q.where(getattr(AccessLogEntry, k) == v)
    return list(db.session.execute(q).scalars())


def last_seq() -> int:
    rows = entries()
    return rows[-1].seq if rows else 0


@pytest.fixture()
def world(ctx, make_user, tmp_path, monkeypatch):
    """A citizen with three appeals and two recorded calls, two DPOs and a registered access request."""
    from crm.consent import rights

    monkeypatch.setitem(ctx.config, "CRM_RECORDINGS_DIR", str(tmp_path / "recordings"))
    op = make_user("operator")
    citizen = CitizenFactory(full_name=NAME, phone=PHONE)
    appeals = [AppealFactory(citizen=citizen, operator=op, description=text) for text in TEXTS]
    CallFactory(appeal=appeals[0], operator=op)
    CallFactory(appeal=appeals[1], operator=op, transcribed=False)
    other = CitizenFactory(full_name=OTHER_NAME, phone=OTHER_PHONE)
    dpo1, dpo2 = make_user("dpo"), make_user("dpo")
    req = rights.register(citizen.id, "access", channel="paper", user_id=dpo1.id)
    return citizen, other, dpo1, dpo2, req


def test_export_needs_the_identity_recorded_and_a_second_dpo(ctx, world):
    from crm.consent import rights
    from crm.dpo import services as dpo_services

    citizen, _, dpo1, dpo2, req = world
    client = SharedContextClient(ctx, dpo1)
    seq = last_seq()
    # nothing is exported before the identity step and the approval
    resp = client.get(f"/dpo/requests/{req.id}/export", query_string={"format": "json"})
    assert resp.status_code == 409 and "личность" in resp.get_data(as_text=True)
    with pytest.raises(rights.RequestError) as err:
        dpo_services.export_citizen(citizen.id, user=dpo1, request=req)
    assert err.value.code == "not_verified"
    with pytest.raises(rights.RequestError) as err:
        rights.approve_export(req, user=dpo2)
    assert err.value.code == "not_verified"

    # the document's number is never kept
    with pytest.raises(rights.RequestError) as err:
        rights.verify_identity(req, "document", document_type="passport_rf", note="паспорт 45 12 345678", user=dpo1)
    assert err.value.code == "document_number"
    with pytest.raises(rights.RequestError):
        rights.verify_identity(req, "document", document_type=None, user=dpo1)
    resp = client.post(f"/dpo/requests/{req.id}/verify", data={"method": "document", "document": "passport_rf",
                                                                "note": "предъявлен лично, фото совпадает"})
    assert resp.status_code == 302
    db.session.expire_all()
    req = rights.get(req.id)
    assert (req.verification_method, req.verification_document, req.verification_by) == ("document", "passport_rf",
                                                                                         dpo1.id)
    assert req.verified_at is not None and req.delivery_method == "print"
    verify = entries(seq, action="dsr.verify")
    assert len(verify) == 1 and verify[0].actor_id == dpo1.id and "фото" not in (verify[0].detail or "")
    assert client.get(f"/dpo/requests/{req.id}/export").status_code == 409  # not approved yet
    assert not entries(seq, action="dsr.export")

    # four eyes: the DPO who recorded the identity cannot approve
    resp = client.post(f"/dpo/requests/{req.id}/approve-export")
    assert resp.status_code == 302
    db.session.expire_all()
    assert rights.get(req.id).export_approved_by is None
    with pytest.raises(rights.RequestError) as err:
        rights.approve_export(rights.get(req.id), user=dpo1)
    assert err.value.code == "four_eyes"
    with pytest.raises(rights.RequestError) as err:
        rights.answer(rights.get(req.id), "направлено", user=dpo1)
    assert err.value.code == "no_export"
    second = SharedContextClient(ctx, dpo2)
    assert second.post(f"/dpo/requests/{req.id}/approve-export").status_code == 302
    db.session.expire_all()
    req = rights.get(req.id)
    assert req.export_approved_by == dpo2.id and req.export_approved_at is not None
    assert [e.actor_id for e in entries(seq, action="dsr.export_approve")] == [dpo2.id]
    # once approved the identity step is fixed
    with pytest.raises(rights.RequestError) as err:
        rights.verify_identity(req, "self_service_code", user=dpo1)
    assert err.value.code == "already_approved"

    # delivered in person: the printable document; logged as a delivery and an export
    page = client.get(f"/dpo/requests/{req.id}/export")
    assert page.status_code == 200 and NAME in page.get_data(as_text=True)
    db.session.expire_all()
    req = rights.get(req.id)
    assert req.delivered_at is not None and req.delivered_by == dpo1.id and req.export_sha256
    assert [e.actor_id for e in entries(seq, action="dsr.deliver")] == [dpo1.id]
    assert [e.actor_id for e in entries(seq, action="dsr.export")] == [dpo1.id]
    rights.answer(req, "выгрузка выдана лично", user=dpo1)
    assert rights.get(req.id).status == "answered"
    # the answer is given: nobody exports the citizen's data on this request again (re-audit N4)
    for who in (client, second):
        resp = who.get(f"/dpo/requests/{req.id}/export", query_string={"format": "json"})
        assert resp.status_code == 409 and NAME not in resp.get_data(as_text=True)
    with pytest.raises(rights.RequestError) as err:
        dpo_services.export_citizen(citizen.id, user=dpo2, request=rights.get(req.id))
    assert err.value.code == "closed"
    assert [e.actor_id for e in entries(seq, action="dsr.export")] == [dpo1.id]


def test_request_page_shows_categories_and_counts_not_texts(ctx, world):
    from crm.citizens.services import format_phone

    citizen, _, dpo1, _, req = world
    seq = last_seq()
    page = SharedContextClient(ctx, dpo1).get(f"/dpo/requests/{req.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    summary = re.search(r"<section[^>]*data-export-summary.*?</section>", html, re.S).group(0)
    text = re.sub(r"<[^>]+>", "", summary)
    for expected in ("обращения: 3", "звонки: 2", "записи: 2", "расшифровки: 1"):
        assert expected in text, expected
    for secret in (*TEXTS, NAME, format_phone("+79126067080"), "Здравствуйте"):
        assert secret not in html, secret
    # counting decrypts nothing: no read of the citizen's data is logged
    assert not [e for e in entries(seq) if e.citizen_id == citizen.id]


def _sign_in_with_code(ctx, phone: str, citizen_id: str, inbox: list, run_worker) -> SharedContextClient:
    from crm.consent import sms

    visitor = SharedContextClient(ctx)
    assert visitor.post("/my", data={"phone": phone}).status_code == 302
    run_worker()  # the code is sent by a background job
    db.session.commit()
    assert [m for m in sms.outbox(citizen_id=citizen_id) if m.kind == "code"]
    body = inbox[-1].body  # the text the gateway delivered: the outbox keeps the code masked
    code = re.search(r"\b(\d{6})\b", body).group(1)
    assert visitor.post("/my/code", data={"code": code}).status_code == 302
    return visitor


def test_self_service_download_after_an_sms_code(ctx, world, sms_inbox, run_worker):
    from crm.consent import rights, selfservice

    citizen, other, dpo1, dpo2, req = world
    rights.verify_identity(req, "self_service_code", user=dpo1)
    assert req.verified_at is None and req.delivery_method == "self_service"
    url = f"/my/requests/{req.id}/export"

    # not approved yet: no download offered, none given
    visitor = _sign_in_with_code(ctx, PHONE, citizen.id, sms_inbox, run_worker)
    assert "data-answers" not in visitor.get("/my/consents").get_data(as_text=True)
    resp = visitor.get(url)
    assert resp.status_code == 302 and not entries(action="dsr.export")

    rights.approve_export(req, user=dpo2)
    # the DPO cannot print what goes out by self-service
    assert SharedContextClient(ctx, dpo1).get(f"/dpo/requests/{req.id}/export").status_code == 409
    # a session begun with a signed link (sent earlier, maybe read by someone else) is not enough
    with ctx.test_request_context():
        link_url, _grant = selfservice.issue_link(citizen, user=dpo1, base_url="http://crm.test", send=False)
    by_link = SharedContextClient(ctx)
    assert by_link.post(link_url.replace("http://crm.test", "")).status_code == 302
    assert "Скачать мои данные" not in by_link.get("/my/consents").get_data(as_text=True)
    assert by_link.get(url).status_code == 302 and not entries(action="dsr.export")
    # another citizen's session does not see the request
    stranger = _sign_in_with_code(ctx, OTHER_PHONE, other.id, sms_inbox, run_worker)
    assert stranger.get(url).status_code == 404
    # nobody signed in
    assert SharedContextClient(ctx).get(url).status_code == 302

    seq = last_seq()
    page = visitor.get("/my/consents").get_data(as_text=True)
    assert "data-answers" in page and url in page
    resp = visitor.get(url)
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    data = json.loads(resp.get_data(as_text=True))
    assert data["citizen"]["full_name"] == NAME and len(data["appeals"]) == 3
    assert OTHER_NAME not in resp.get_data(as_text=True)
    db.session.expire_all()
    req = rights.get(req.id)
    assert req.verified_at is not None and req.delivered_at is not None and req.export_sha256 == data["sha256"]
    code_grant = req.verification_grant_id
    assert code_grant and selfservice.signed_in_by_code(code_grant)
    new = entries(seq)
    assert {e.action for e in new} >= {"dsr.deliver", "dsr.export", "citizen.reveal", "appeal.view"}
    # every read the download made is the citizen's own, not an anonymous one
    assert {e.actor for e in new} == {"citizen:selfservice"}
    deliver = [e for e in new if e.action == "dsr.deliver"][0]
    assert "self_service" in deliver.detail and code_grant in deliver.detail


@pytest.mark.parametrize("method", ["document", "self_service_code"])
def test_no_print_reprint_or_download_before_the_second_dpos_approval(ctx, world, method, monkeypatch):
    """Issue 13 re-audit (point 5): with the identity step recorded but no second DPO's approval, neither
    format of the DPO's export (the printable page, the JSON file) nor the citizen's self-service download
    hands anything out, however often asked (a reprint), and nothing is logged as exported or delivered;
    after the approval only the way of delivery recorded works."""
    from crm.consent import rights, selfservice
    from crm.dpo import services as dpo_services

    citizen, _, dpo1, dpo2, req = world
    rights.verify_identity(req, method, **({"document_type": "passport_rf"} if method == "document" else {}),
                           user=dpo1)
    dpo = SharedContextClient(ctx, dpo1)
    visitor = SharedContextClient(ctx)
    with visitor.client.session_transaction() as s:  # a session begun with a used SMS code of the citizen
        s["ss_scope"], s["ss_until"], s["ss_grant"] = [citizen.id], 4_102_444_800, "g"
    monkeypatch.setattr(selfservice, "signed_in_by_code", lambda grant_id: True)
    seq = last_seq()
    for _ in range(2):
        for fmt in ("html", "json"):
            resp = dpo.get(f"/dpo/requests/{req.id}/export", query_string={"format": fmt})
            assert resp.status_code == 409 and NAME not in resp.get_data(as_text=True)
        resp = visitor.get(f"/my/requests/{req.id}/export")
        assert resp.status_code == 302 and NAME not in resp.get_data(as_text=True)
    for call in (lambda: dpo_services.export_citizen(citizen.id, user=dpo2, request=rights.get(req.id)),
                 lambda: dpo_services.export_for_self_service(rights.get(req.id), scope=[citizen.id], grant_id="g")):
        with pytest.raises(rights.RequestError) as err:
            call()
        assert err.value.code == "not_approved"
    assert not entries(seq, action="dsr.export") and not entries(seq, action="dsr.deliver")
    db.session.expire_all()
    assert rights.get(req.id).delivered_at is None and rights.get(req.id).export_sha256 is None

    rights.approve_export(rights.get(req.id), user=dpo2)
    printed = dpo.get(f"/dpo/requests/{req.id}/export", query_string={"format": "json"})
    downloaded = visitor.get(f"/my/requests/{req.id}/export")
    if method == "document":
        assert printed.status_code == 200 and NAME in printed.get_data(as_text=True)
        assert downloaded.status_code == 302
    else:
        assert printed.status_code == 409
        assert downloaded.status_code == 200 and NAME in downloaded.get_data(as_text=True)
