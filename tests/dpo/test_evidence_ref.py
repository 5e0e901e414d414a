"""The evidence reference of a consent (``consent_events.evidence_ref``: a paper consent's registration
number, or the self-service grant) is kept in clear on the append-only consent record (issue 13
re-audit). Like the withdrawal's number (test_withdrawal_ref.py) it takes a registration number only —
no phone, address, name or the citizen's surname — the citizen's erasure clears it, the DPO's history
then says so, and the append-only trigger lets it go to NULL but never to another value."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from crm.consent import rights
from crm.consent import services as consent
from crm.consent.models import ConsentEvent
from crm.db import db
from crm.security.models import DestructionRecord
from tests.factories import CitizenFactory

SURNAME = "Шредерова"


@pytest.fixture()
def citizen(ctx):
    return CitizenFactory(full_name=f"{SURNAME} Аглая Пантелеевна", phone="+7 916 204-73-58")


def _events(citizen_id):
    return db.session.execute(sa.select(sa.func.count()).select_from(ConsentEvent).where(
        ConsentEvent.citizen_id == citizen_id)).scalar_one()


@pytest.mark.parametrize("ref, what", [
    ("скан, ул. Садовая, д. 5, кв. 12", "адрес"),
    ("перезвонить 8 916 204-73-58", "номер телефона"),
    ("скан от aglaya@example.ru", "адрес эл. почты"),
    ("согласие Шредеровой", "фамилия заявителя"),
    ("scan SHREDEROVA", "фамилия заявителя"),
    ("паспорт серия 45 10 номер 123456", "номер документа"),
])
def test_an_evidence_reference_with_personal_data_is_refused(citizen, ref, what):
    with pytest.raises(consent.ConsentError) as exc:
        consent.record(citizen, "csat_survey", channel="paper", evidence_ref=ref)
    assert exc.value.field == "evidence_ref" and exc.value.code == "personal_data" and what in str(exc.value)
    db.session.rollback()
    assert _events(citizen.id) == 0  # nothing written


def test_only_a_registration_number_or_a_grant_is_accepted(citizen):
    with pytest.raises(consent.ConsentError) as exc:
        consent.record(citizen, "csat_survey", channel="paper", evidence_ref="вх. № 12 <script>")
    assert exc.value.field == "evidence_ref" and exc.value.code == "invalid"
    db.session.rollback()
    with pytest.raises(consent.ConsentError):
        consent.record(citizen, "csat_survey", channel="paper", evidence_ref="1" * 65)
    db.session.rollback()
    assert _events(citizen.id) == 0
    grant = "selfservice grant 0b5e8c1a-3f0e-4c4e-9d7a-5b2f3c1d9e8f"
    assert consent.check_evidence_ref(grant, citizen.id) == grant
    event = consent.record(citizen, "csat_survey", channel="paper", evidence_ref="  вх. № 01-12/345  ")
    assert event.evidence_ref == "вх. № 01-12/345" and event.evidence_kind == "scan"


def test_erasure_clears_the_reference_and_the_history_says_so(citizen, login, make_user):
    event = consent.record(citizen, "csat_survey", channel="paper", evidence_ref="вх. № 01-12/345")
    consent.withdraw(event, channel="paper", ref="вх. № 01-12/400")
    req = rights.request_erasure(citizen.id, "отзыв согласия, заявление", user=make_user("dpo"))
    rights.approve_erasure(req, user=make_user("dpo"))
    db.session.expire_all()
    row = db.session.get(ConsentEvent, event.id)
    assert row.evidence_ref is None and row.withdrawn_ref is None
    assert row.evidence_kind == "scan" and row.withdrawn_at is not None  # the controller's evidence stays
    record = db.session.execute(sa.select(DestructionRecord).where(
        DestructionRecord.citizen_id == citizen.id)).scalar_one()
    assert "consent_refs" in record.categories.split(",")
    html = login(make_user("dpo")).get(f"/dpo/citizens/{citizen.id}/consents").get_data(as_text=True)
    assert "01-12/345" not in html and 'data-cleared="evidence_ref"' in html
    assert "рег. номер уничтожен вместе с данными заявителя" in html


def test_the_trigger_lets_the_reference_be_cleared_never_rewritten(citizen):
    plain = consent.record(citizen, "sms_notifications")
    paper = consent.record(citizen, "csat_survey", channel="paper", evidence_ref="вх. № 7")
    for event_id, value in ((paper.id, "вх. № 8"), (plain.id, "вх. № 9")):  # rewritten, or written later
        with pytest.raises(sa.exc.DatabaseError):
            db.session.execute(sa.update(ConsentEvent).where(ConsentEvent.id == event_id).values(evidence_ref=value))
            db.session.flush()
        db.session.rollback()
    consent.withdraw(consent.get(paper.id), channel="paper", ref="вх. № 10")
    db.session.execute(sa.update(ConsentEvent).where(ConsentEvent.id == paper.id).values(evidence_ref=None))
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(ConsentEvent, paper.id).evidence_ref is None
    with pytest.raises(sa.exc.DatabaseError):  # and once cleared it stays cleared
        db.session.execute(sa.update(ConsentEvent).where(ConsentEvent.id == paper.id).values(evidence_ref="вх. № 7"))
        db.session.flush()
    db.session.rollback()
    with pytest.raises(sa.exc.DatabaseError):  # the withdrawal's number still only goes to NULL
        db.session.execute(sa.update(ConsentEvent).where(ConsentEvent.id == paper.id).values(withdrawn_ref="x"))
        db.session.flush()
    db.session.rollback()
