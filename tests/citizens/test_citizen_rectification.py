"""Rectification (152-ФЗ ст. 14, 21 ч. 2): an operator (on the appeal page) or the DPO (on the
citizen's consent history, or through the API) corrects a citizen's name, phone, e-mail or address;
the blind indexes follow the new values, and the access log names the fields changed without the old
or the new values.

Runs on SQLite + embedded Redis by default and on PostgreSQL + Redis with ``DATABASE_URL`` /
``REDIS_URL`` set (CSRF is off in the ``app`` fixture).
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from crm.db import db
from tests.clients import SharedContextClient
from tests.factories import AppealFactory, CitizenFactory

OLD_NAME, NEW_NAME = "Исправляева Анна Сергеевна", "Поправкина Анна Сергеевна"
OLD_PHONE, NEW_PHONE = "+7 912 111-22-33", "8 (915) 444-55-66"
OLD_E164, NEW_E164 = "+79121112233", "+79154445566"
OLD_ADDRESS, NEW_ADDRESS = "ул. Садовая, д. 5", "ул. Лесная, д. 12"


def log_rows(since: int = 0) -> list:
    from crm.security.models import AccessLogEntry

    db.session.commit()
    return list(db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.seq > since)
                                   .order_by(AccessLogEntry.seq)).scalars())


def last_seq() -> int:
    rows = log_rows()
    return rows[-1].seq if rows else 0


def row_text(row) -> str:
    """Every column of an access-log row as text, to grep for values."""
    return " | ".join(str(getattr(row, c.key)) for c in row.__table__.columns)


def values_of(*spellings: str) -> list[str]:
    """A phone or a name in the spellings a leak could take (digits only, lower case too)."""
    out = []
    for s in spellings:
        out += [s, s.lower(), "".join(ch for ch in s if ch.isdigit()) or s]
    return [v for v in out if len(v) >= 6]


def assert_no_values(rows, *values):
    for r in rows:
        text = row_text(r)
        for v in values_of(*values):
            assert v not in text, (r.action, v)


@pytest.fixture()
def citizen(ctx):
    return CitizenFactory(full_name=OLD_NAME, phone=OLD_PHONE, address=OLD_ADDRESS, apartment="7")


def found_ids(phone: str) -> set[str]:
    from crm.citizens import services as citizens

    return {c.id for c in citizens.find_by_phone(phone)}


def test_rectify_moves_the_blind_indexes_and_logs_fields_not_values(ctx, make_user, citizen):
    from crm.citizens import services as citizens

    op = make_user("operator")
    assert found_ids(OLD_PHONE) == {citizen.id}
    seq = last_seq()
    changed = citizens.rectify(citizen, {"phone": NEW_PHONE, "full_name": NEW_NAME, "address": NEW_ADDRESS},
                               user=op, purpose="appeal_processing")
    assert changed == ["full_name", "phone", "address"]
    db.session.expire_all()
    c = citizens.get(citizen.id)
    assert (c.full_name, c.phone, c.address, c.apartment) == (NEW_NAME, NEW_E164, NEW_ADDRESS, "7")

    rows = log_rows(seq)
    rect = [r for r in rows if r.action == "citizen.rectify"]
    assert len(rect) == 1 and rect[0].citizen_id == citizen.id and rect[0].actor_id == op.id
    assert set(rect[0].fields.split(",")) == {"full_name", "phone", "address"}
    assert_no_values(rows, OLD_NAME, NEW_NAME, OLD_PHONE, NEW_PHONE, OLD_E164, NEW_E164, OLD_ADDRESS, NEW_ADDRESS)

    # found by the new phone (any spelling), by the new surname and building; not by the old ones
    assert found_ids(NEW_PHONE) == {citizen.id} and found_ids(NEW_E164) == {citizen.id}
    assert found_ids(OLD_PHONE) == set()
    assert [x.id for x in citizens.find_by_name_and_building("Поправкина", "ул Лесная д 12")] == [citizen.id]
    assert citizens.find_by_name_and_building("Исправляева", OLD_ADDRESS) == []
    # nothing to change: nothing written
    seq = last_seq()
    assert citizens.rectify(c, {"phone": NEW_E164}, user=op) == []
    assert log_rows(seq) == []


def test_rectify_refuses_bad_values_other_roles_and_erased_citizens(ctx, make_user, citizen):
    from crm.citizens import services as citizens
    from crm.security.permissions import PermissionDenied
    from crm.db import utcnow

    op = make_user("operator")
    for changes, field in (({"phone": "112"}, "phone"), ({"full_name": " "}, "full_name"),
                           ({"email": "нет почты"}, "email"), ({"created_at": "x"}, "created_at")):
        with pytest.raises(citizens.CitizenError) as err:
            citizens.rectify(citizen, changes, user=op)
        assert err.value.field == field
    for role in ("supervisor", "admin", "executor"):
        with pytest.raises(PermissionDenied):
            citizens.rectify(citizen, {"phone": NEW_PHONE}, user=make_user(role))
    db.session.expire_all()
    assert citizens.get(citizen.id).phone == OLD_E164 and found_ids(OLD_PHONE) == {citizen.id}
    citizen.erased_at = utcnow()
    db.session.commit()
    with pytest.raises(citizens.CitizenError):
        citizens.rectify(citizen, {"phone": NEW_PHONE}, user=op)


def test_operator_corrects_the_phone_on_the_appeal_page(ctx, make_user, citizen):
    from crm.citizens import services as citizens

    op = make_user("operator")
    appeal = AppealFactory(citizen=citizen, operator=op)
    client = SharedContextClient(ctx, op)
    page = client.get(f"/appeals/{appeal.id}").get_data(as_text=True)
    assert "data-rectify" in page and f"/appeals/{appeal.id}/citizen" in page
    bad = client.post(f"/appeals/{appeal.id}/citizen", data={"phone": "12345"})
    assert bad.status_code == 422 and "data-rectify" in bad.get_data(as_text=True)
    seq = last_seq()
    resp = client.post(f"/appeals/{appeal.id}/citizen", data={"phone": NEW_PHONE, "full_name": ""})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:1000]
    db.session.expire_all()
    assert citizens.get(citizen.id).phone == NEW_E164 and citizens.get(citizen.id).full_name == OLD_NAME
    rows = log_rows(seq)
    rect = [r for r in rows if r.action == "citizen.rectify"]
    assert len(rect) == 1 and rect[0].fields == "phone" and rect[0].appeal_id == appeal.id
    assert_no_values(rows, OLD_PHONE, NEW_PHONE, OLD_E164, NEW_E164)
    assert found_ids(NEW_PHONE) == {citizen.id} and found_ids(OLD_PHONE) == set()
    sup = SharedContextClient(ctx, make_user("supervisor"))
    assert sup.post(f"/appeals/{appeal.id}/citizen", data={"phone": OLD_PHONE}).status_code == 403


def test_dpo_corrects_the_name_on_the_consent_history(ctx, make_user, citizen):
    from crm.citizens import services as citizens

    client = SharedContextClient(ctx, make_user("dpo"))
    page = client.get(f"/dpo/citizens/{citizen.id}/consents").get_data(as_text=True)
    assert "data-rectify" in page
    seq = last_seq()
    resp = client.post(f"/dpo/citizens/{citizen.id}/rectify", data={"full_name": NEW_NAME})
    assert resp.status_code == 302
    db.session.expire_all()
    assert citizens.get(citizen.id).full_name == NEW_NAME
    rows = log_rows(seq)
    rect = [r for r in rows if r.action == "citizen.rectify"]
    assert len(rect) == 1 and rect[0].fields == "full_name" and rect[0].purpose == "data_subject_request"
    assert_no_values(rows, OLD_NAME, NEW_NAME)


def test_api_patch_citizen(ctx, client, make_user, api_token, citizen):
    from crm.citizens import services as citizens
    from crm.db import utcnow

    op = api_token(make_user("operator"))
    seq = last_seq()
    resp = client.patch(f"/api/v1/citizens/{citizen.id}", json={"phone": NEW_PHONE, "address": NEW_ADDRESS},
                        headers=op)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {"id": citizen.id, "changed": ["phone", "address"]}
    rows = log_rows(seq)
    assert [set(r.fields.split(",")) for r in rows if r.action == "citizen.rectify"] == [{"phone", "address"}]
    assert_no_values(rows, OLD_PHONE, NEW_PHONE, OLD_E164, NEW_E164, OLD_ADDRESS, NEW_ADDRESS)
    assert found_ids(NEW_PHONE) == {citizen.id} and found_ids(OLD_PHONE) == set()

    bad = client.patch(f"/api/v1/citizens/{citizen.id}", json={"phone": "112"}, headers=op)
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_phone"
    assert client.patch(f"/api/v1/citizens/{citizen.id}", json={"phone": NEW_PHONE},
                        headers=api_token(make_user("supervisor"))).status_code == 403
    assert client.patch("/api/v1/citizens/nope", json={"phone": NEW_PHONE}, headers=op).status_code == 404
    dpo = api_token(make_user("dpo"))
    resp = client.patch(f"/api/v1/citizens/{citizen.id}", json={"apartment": None}, headers=dpo)
    assert resp.status_code == 200 and resp.get_json()["changed"] == ["apartment"]
    db.session.expire_all()
    assert citizens.get(citizen.id).apartment is None
    c = citizens.get(citizen.id)
    c.erased_at = utcnow()
    db.session.commit()
    assert client.patch(f"/api/v1/citizens/{citizen.id}", json={"phone": OLD_PHONE}, headers=op).status_code == 409


def test_rectified_address_moves_the_appeals_building_key(ctx, make_user, citizen):
    """The appeals' copy of the citizen's building index follows a rectified address (re-audit 8):
    repeats and appeal searches match the corrected house, no longer the old one."""
    from crm.appeals.models import Appeal
    from crm.citizens import services as citizens

    appeal = AppealFactory(citizen=citizen)
    assert db.session.get(Appeal, appeal.id).building_key in citizens.building_search_keys(OLD_ADDRESS)
    citizens.rectify(citizen, {"address": NEW_ADDRESS}, user=make_user("operator"))
    db.session.expire_all()
    key = db.session.get(Appeal, appeal.id).building_key
    assert key in citizens.building_search_keys(NEW_ADDRESS)
    assert key not in citizens.building_search_keys(OLD_ADDRESS)


# --- a corrected phone that is another citizen's (issue 13, re-audit) --------------------------------

OTHER_NAME = "Соседова Мария Ивановна"


def test_a_phone_of_another_citizen_is_refused_and_nothing_is_written(ctx, make_user, citizen):
    """As registration refuses it (README: phone_in_use): the number is found through its blind index and
    confirmed by decryption; nothing of the correction is written, the look-up is logged; a confirmed
    correction (a shared household number) goes through."""
    from crm.citizens import services as citizens

    op = make_user("operator")
    other = CitizenFactory(full_name=OTHER_NAME, phone=NEW_PHONE)
    seq = last_seq()
    with pytest.raises(citizens.PhoneInUse) as err:
        citizens.rectify(citizen, {"phone": NEW_PHONE, "full_name": NEW_NAME, "address": NEW_ADDRESS}, user=op)
    assert err.value.field == "phone" and err.value.citizen_ids == [other.id]
    assert "уже есть у другого заявителя" in str(err.value)
    db.session.expire_all()
    c = citizens.get(citizen.id)
    assert (c.full_name, c.phone, c.address) == (OLD_NAME, OLD_E164, OLD_ADDRESS)  # no half-written correction
    assert found_ids(OLD_PHONE) == {citizen.id} and found_ids(NEW_PHONE) == {other.id}
    rows = log_rows(seq)
    assert not [r for r in rows if r.action == "citizen.rectify"]
    assert [(r.action, r.citizen_id) for r in rows if r.citizen_id == other.id][0] == ("citizen.search", other.id)
    assert_no_values(rows, NEW_PHONE, NEW_E164, OTHER_NAME)
    # confirmed: the number is shared
    assert citizens.rectify(citizen, {"phone": NEW_PHONE}, user=op, confirm_duplicate=True) == ["phone"]
    assert found_ids(NEW_PHONE) == {citizen.id, other.id}


def test_an_index_collision_or_an_erased_holder_is_no_conflict(ctx, make_user, citizen):
    """The phone index is a truncated HMAC: a row whose index value matches but whose decrypted phone
    differs holds another number; an erased citizen holds nothing."""
    from crm.citizens import services as citizens
    from crm.citizens.models import Citizen
    from crm.citizens.phones import normalise_phone
    from crm.db import utcnow
    from crm.security import blind_index

    op = make_user("operator")
    lookalike = CitizenFactory(full_name=OTHER_NAME, phone="+7 903 000-00-01")
    column, value = blind_index.lookup("phone", normalise_phone(NEW_PHONE))
    db.session.execute(sa.update(Citizen).where(Citizen.id == lookalike.id).values({column: value}))
    erased = CitizenFactory(full_name="Уничтоженова Ольга", phone=NEW_PHONE)
    erased.erased_at = utcnow()
    db.session.commit()
    assert citizens.rectify(citizen, {"phone": NEW_PHONE}, user=op) == ["phone"]
    assert found_ids(NEW_PHONE) == {citizen.id}


def test_the_pages_and_the_api_refuse_another_citizens_phone_until_confirmed(ctx, client, make_user, api_token,
                                                                               citizen):
    from crm.citizens import services as citizens

    op = make_user("operator")
    other = CitizenFactory(full_name=OTHER_NAME, phone=NEW_PHONE)
    appeal = AppealFactory(citizen=citizen, operator=op)
    page = SharedContextClient(ctx, op)
    resp = page.post(f"/appeals/{appeal.id}/citizen", data={"phone": NEW_PHONE})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "уже есть у другого заявителя" in html and 'name="confirm_duplicate"' in html
    assert OTHER_NAME not in html
    dpo = SharedContextClient(ctx, make_user("dpo"))
    resp = dpo.post(f"/dpo/citizens/{citizen.id}/rectify", data={"phone": NEW_PHONE})
    assert resp.status_code == 422 and 'name="confirm_duplicate"' in resp.get_data(as_text=True)
    db.session.expire_all()
    assert citizens.get(citizen.id).phone == OLD_E164
    headers = api_token(op)
    resp = client.patch(f"/api/v1/citizens/{citizen.id}", json={"phone": NEW_PHONE, "full_name": NEW_NAME},
                        headers=headers)
    assert resp.status_code == 409, resp.get_json()
    assert resp.get_json()["error"]["code"] == "phone_in_use" and resp.get_json()["citizen_ids"] == [other.id]
    db.session.expire_all()
    assert (citizens.get(citizen.id).phone, citizens.get(citizen.id).full_name) == (OLD_E164, OLD_NAME)
    resp = page.post(f"/appeals/{appeal.id}/citizen", data={"phone": NEW_PHONE, "confirm_duplicate": "y"})
    assert resp.status_code == 302
    db.session.expire_all()
    assert citizens.get(citizen.id).phone == NEW_E164
    resp = client.patch(f"/api/v1/citizens/{citizen.id}", json={"phone": OLD_PHONE, "confirm_duplicate": True},
                        headers=headers)
    assert resp.status_code == 200 and resp.get_json()["changed"] == ["phone"]


def test_a_corrected_phone_tells_the_old_number(ctx, make_user, citizen, sms_inbox):
    """An operator who puts another number in the card (their own, to receive the citizen's /my codes)
    cannot do it unnoticed: the old number gets an SMS naming neither number (issue 13 re-audit)."""
    from crm.consent.models import SmsMessage

    op = make_user("operator")
    appeal = AppealFactory(citizen=citizen, operator=op)
    client = SharedContextClient(ctx, op)
    seq = last_seq()
    assert client.post(f"/appeals/{appeal.id}/citizen", data={"phone": NEW_PHONE}).status_code == 302
    assert [m.to for m in sms_inbox] == [OLD_E164]
    body = sms_inbox[0].body
    assert "номер телефона" in body and "не просили" in body
    assert not any(v in body for v in values_of(OLD_PHONE, NEW_PHONE, OLD_E164, NEW_E164))
    db.session.expire_all()
    row = db.session.execute(sa.select(SmsMessage).where(SmsMessage.citizen_id == citizen.id)).scalar_one()
    assert row.kind == "phone_changed" and row.status == "sent" and row.to_masked.endswith("33")
    sent = [r for r in log_rows(seq) if r.action == "sms.send"]
    assert len(sent) == 1 and sent[0].citizen_id == citizen.id and sent[0].actor_id == op.id
    # another field corrected, or the same phone again: nothing sent
    sms_inbox.clear()
    assert client.post(f"/appeals/{appeal.id}/citizen", data={"phone": NEW_E164, "apartment": "8"}).status_code == 302
    assert sms_inbox == []


def test_a_failed_notice_does_not_undo_the_correction(ctx, make_user, citizen, monkeypatch):
    from crm.citizens import services as citizens
    from crm.consent import sms
    from crm.consent.models import SmsMessage

    class Down(sms.SmsGateway):
        def deliver(self, message) -> None:
            raise ConnectionError("gateway down")

    monkeypatch.setattr(sms, "gateway", lambda app=None: Down())
    assert citizens.rectify(citizen, {"phone": NEW_PHONE}, user=make_user("dpo")) == ["phone"]
    db.session.expire_all()
    assert citizens.get(citizen.id).phone == NEW_E164
    row = db.session.execute(sa.select(SmsMessage).where(SmsMessage.citizen_id == citizen.id)).scalar_one()
    assert row.kind == "phone_changed" and row.status == "failed"
