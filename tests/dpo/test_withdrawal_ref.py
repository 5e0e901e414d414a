"""The registration number of a withdrawal received on paper (issue 13, point 7): the DPO's field
«Рег. номер письма / скана» is kept in clear on the append-only consent record
(``consent_events.withdrawn_ref``), so it takes a registration number only — no phone, address, name
or the citizen's surname — and the citizen's erasure clears it."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from crm.consent import rights
from crm.consent import services as consent
from crm.consent.models import ConsentEvent
from crm.db import db
from tests.factories import ConsentFactory, CitizenFactory

SURNAME = "Шредерова"


@pytest.fixture()
def event(ctx):
    citizen = CitizenFactory(full_name=f"{SURNAME} Аглая Пантелеевна", phone="+7 916 204-73-58")
    return ConsentFactory(citizen=citizen)


def _withdraw(login, make_user, event, ref: str):
    client = login(make_user("dpo"))
    return client.post(f"/dpo/consents/{event.id}/withdraw", data={"channel": "paper", "ref": ref},
                       follow_redirects=True)


@pytest.mark.parametrize("ref, what", [
    ("письмо, ул. Садовая, д. 5, кв. 12", "адрес"),
    ("перезвонить 8 916 204-73-58", "номер телефона"),
    ("скан от aglaya@example.ru", "адрес эл. почты"),
    ("заявление Шредеровой", "фамилия заявителя"),
])
def test_a_reference_with_personal_data_is_refused(event, login, make_user, ref, what):
    resp = _withdraw(login, make_user, event, ref)
    text = resp.get_data(as_text=True)
    assert "персональных данных" in text and what in text
    db.session.expire_all()
    row = db.session.get(ConsentEvent, event.id)
    assert row.withdrawn_at is None and row.withdrawn_ref is None


def test_only_a_registration_number_shape_is_accepted(event):
    with pytest.raises(consent.ConsentError) as exc:
        consent.check_withdrawal_ref("вх. № 12 <script>", event.citizen_id)
    assert exc.value.field == "ref"
    with pytest.raises(consent.ConsentError):
        consent.check_withdrawal_ref("1" * 65, event.citizen_id)
    assert consent.check_withdrawal_ref("  вх. № 01-12/345  ", event.citizen_id) == "вх. № 01-12/345"
    assert consent.check_withdrawal_ref("", event.citizen_id) is None


def test_a_registration_number_is_kept_and_erasure_clears_it(event, login, make_user):
    resp = _withdraw(login, make_user, event, "вх. № 01-12/345")
    assert "Отзыв согласия зарегистрирован" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(ConsentEvent, event.id).withdrawn_ref == "вх. № 01-12/345"
    req = rights.request_erasure(event.citizen_id, "отзыв согласия, заявление", user=make_user("dpo"))
    rights.approve_erasure(req, user=make_user("dpo"))
    db.session.expire_all()
    row = db.session.get(ConsentEvent, event.id)
    assert row.withdrawn_ref is None
    assert row.withdrawn_at is not None  # the withdrawal itself, the controller's evidence, stays
    refs = db.session.execute(sa.select(ConsentEvent.withdrawn_ref).where(
        ConsentEvent.citizen_id == event.citizen_id)).scalars().all()
    assert refs and not any(refs)
