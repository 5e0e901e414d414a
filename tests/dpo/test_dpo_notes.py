"""Free-text notes on the DPO's records hold no personal data in clear (issue 13, point 7): a data
subject request's note, an extension's reasons, the answer, an erasure's reason (which goes into
the destruction act, kept for years after the data are destroyed) and an alert's comment are kept in
clear, so a note with a phone number, an e-mail or street address, a full name or the citizen's own
surname is refused and nothing is saved."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from crm.consent import rights
from crm.consent.models import DataSubjectRequest
from crm.db import db, utcnow
from crm.errors import InvalidInput
from crm.dpo import alerts
from crm.dpo.models import AccessAlert
from tests.factories import CitizenFactory

SURNAME = "Шредерова"


@pytest.fixture()
def citizen(ctx):
    return CitizenFactory(full_name=f"{SURNAME} Аглая Пантелеевна", phone="+7 916 204-73-58")


def _requests() -> int:
    return db.session.execute(sa.select(sa.func.count()).select_from(DataSubjectRequest)).scalar_one()


@pytest.mark.parametrize("note, what", [
    ("просит сведения, перезвонить 8 916 204-73-58", "номер телефона"),
    ("ответ на aglaya@example.ru", "адрес эл. почты"),
    ("проживает по адресу ул. Садовая, д. 5", "адрес"),
    ("письмо вернулось: ул.Ленина,5-12", "адрес"),
    ("ответ отправлен на Ленинский пр-т, 5", "адрес"),
    ("заявитель живёт на улице Ленина в доме 5", "адрес"),
    ("ответ в квартиру 12 не доставлен: в квартире 12 никого", "адрес"),
    ("Заявление Шредеровой по почте", "фамилия заявителя"),
    ("Заявление Шредеровой А. П.", "ФИО"),
])
def test_a_request_note_with_personal_data_is_refused(citizen, make_user, note, what):
    with pytest.raises(rights.RequestError) as exc:
        rights.register(citizen.id, "access", channel="paper", note=note, user_id=make_user("dpo").id)
    assert exc.value.code == "personal_data" and exc.value.field == "note" and what in str(exc.value)
    assert _requests() == 0


def test_every_note_of_the_request_workflow_is_checked(citizen, make_user):
    dpo, second = make_user("dpo"), make_user("dpo")
    req = rights.register(citizen.id, "access", channel="paper", note="просит сведения о своих данных",
                          user_id=dpo.id)
    with pytest.raises(rights.RequestError, match="номер телефона"):
        rights.extend(req, "нужно позвонить заявителю по номеру 8 916 204-73-58", user=dpo)
    assert db.session.get(DataSubjectRequest, req.id).extended_due_at is None
    rights.extend(req, "запрошены архивные записи звонков из резервного хранилища", user=dpo)
    with pytest.raises(rights.RequestError, match="адрес"):
        rights.answer(req, "отказано, письмо на ул. Садовая, д. 5", user=dpo, rejected=True)
    assert db.session.get(DataSubjectRequest, req.id).status == "open"
    with pytest.raises(rights.RequestError, match="фамилия заявителя"):
        rights.request_erasure(citizen.id, f"по заявлению {SURNAME}", user=dpo)
    erasure = rights.request_erasure(citizen.id, "отзыв согласия, заявление от 01.05.2026", user=dpo)
    with pytest.raises(rights.RequestError, match="адрес эл. почты"):
        rights.reject_erasure(erasure, "ответ направлен на aglaya@example.ru", user=second)
    assert db.session.get(DataSubjectRequest, erasure.id).status == "awaiting_approval"


def test_the_request_form_shows_the_refusal(citizen, make_user, login):
    client = login(make_user("dpo"))
    resp = client.post("/dpo/requests", data={"citizen_id": citizen.id, "type": "access", "channel": "email",
                                              "purpose": "", "note": "просит сведения, e-mail aglaya@example.ru"})
    assert resp.status_code == 422
    assert "персональных данных" in resp.get_data(as_text=True)
    assert _requests() == 0


def test_an_alert_comment_with_personal_data_is_refused(ctx, make_user, login):
    dpo = make_user("dpo")
    alert = AccessAlert(rule="after_hours", actor_id=dpo.id, key="test", count=1, window_start=utcnow(),
                        window_end=utcnow())
    db.session.add(alert)
    db.session.commit()
    with pytest.raises(InvalidInput) as exc:
        alerts.acknowledge(alert, user=dpo, comment="звонил Иван Петрович, тел. 8 916 204-73-58")
    assert exc.value.code == "personal_data"
    db.session.rollback()
    assert db.session.get(AccessAlert, alert.id).ack_at is None
    client = login(dpo)
    resp = client.post(f"/dpo/alerts/{alert.id}/acknowledge", data={"comment": "письмо на aglaya@example.ru"},
                       follow_redirects=True)
    assert "персональных данных" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(AccessAlert, alert.id).ack_comment is None
    alerts.acknowledge(db.session.get(AccessAlert, alert.id), user=dpo, comment="ночная смена АДС")
    assert db.session.get(AccessAlert, alert.id).ack_comment == "ночная смена АДС"


def test_the_identity_note_of_an_access_request_is_checked(citizen, make_user):
    dpo = make_user("dpo")
    req = rights.register(citizen.id, "access", channel="paper", note="просит сведения о своих данных",
                          user_id=dpo.id)
    with pytest.raises(rights.RequestError) as exc:
        rights.verify_identity(req, "document", document_type="passport_rf",
                               note=f"паспорт предъявлен, фамилия {SURNAME}", user=dpo)
    assert (exc.value.code, exc.value.field) == ("personal_data", "verification_note")
    assert db.session.get(DataSubjectRequest, req.id).verification_method is None
    rights.verify_identity(req, "document", document_type="passport_rf", note="предъявлен лично", user=dpo)
    assert db.session.get(DataSubjectRequest, req.id).verification_note == "предъявлен лично"
