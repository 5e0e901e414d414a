"""The test factories (tests/factories.py) make rows as the product does: through the services, so
personal data is ciphertext at rest, blind indexes find it and the access log records each creation."""
from __future__ import annotations

import sqlalchemy as sa

from crm.appeals import services as appeals
from crm.calls import services as calls
from crm.calls.transcription import numbers
from crm.citizens import services as citizens
from crm.citizens.models import Citizen
from crm.citizens.phones import normalise_phone
from crm.consent import services as consent
from crm.db import db
from crm.qa import services as qa
from crm.security.models import AccessLogEntry
from crm.users import services as users
from crm.users.models import User
from tests.factories import (GOOD_SEGMENTS, AppealFactory, CallFactory, CitizenFactory, ConsentFactory,
                             EvaluationFactory, UserFactory, factory_phone)
from tests.mfa import sign_in


def _actions(**where) -> list[str]:
    query = db.select(AccessLogEntry.action).order_by(AccessLogEntry.seq)
    for col, value in where.items():
        query = query.where(getattr(AccessLogEntry, col) == value)
    return list(db.session.execute(query).scalars())


def test_citizen_phone_is_encrypted_at_rest_and_found_by_blind_index(ctx):
    c = CitizenFactory(full_name="Фабричная Ольга Петровна", address="ул. Садовая, д. 5")
    e164 = normalise_phone(c.phone)
    row = db.session.execute(sa.text("SELECT phone_enc, full_name_enc, phone_bidx FROM citizens WHERE id = :id"),
                             {"id": c.id}).one()
    assert e164.encode() not in bytes(row.phone_enc) and "Фабричная".encode() not in bytes(row.full_name_enc)
    assert row.phone_bidx and e164[2:] not in row.phone_bidx
    assert [x.id for x in citizens.find_by_phone(c.phone)] == [c.id]
    assert [x.id for x in citizens.find_by_name_and_building("Фабричная", "ул Садовая д 5")] == [c.id]
    assert "citizen.create" in _actions(citizen_id=c.id)


def test_default_citizens_get_distinct_valid_phones_and_build_saves_nothing(ctx):
    a, b = CitizenFactory(), CitizenFactory()
    assert a.phone != b.phone and a.full_name == b.full_name == "Петров Иван Сергеевич"
    assert normalise_phone(factory_phone(0)) == "+79157000000" and normalise_phone(factory_phone(999_999))
    data = CitizenFactory.build(full_name="Несохранённый Пётр")
    assert isinstance(data, citizens.CitizenData) and data.full_name == "Несохранённый Пётр"
    assert db.session.scalar(db.select(sa.func.count()).select_from(Citizen)) == 2


def test_citizen_qa_consent_given_refused_or_not_asked(ctx):
    given, refused, unasked = CitizenFactory(qa_consent=True), CitizenFactory(qa_consent=False), CitizenFactory()
    assert consent.has_consent(given.id, "call_recording_qa")
    assert not consent.has_consent(refused.id, "call_recording_qa") and consent.for_citizen(refused.id)
    assert consent.for_citizen(unasked.id) == []
    assert "consent.refuse" in _actions(citizen_id=refused.id)


def test_consent_factory_records_through_the_service(ctx):
    ev = ConsentFactory(purpose="appeal_processing", channel="web")
    assert ev.given and ev.purpose_code == "appeal_processing" and ev.channel == "web" and ev.controller_name
    assert consent.has_consent(ev.citizen_id, "appeal_processing")
    assert "consent.grant" in _actions(citizen_id=ev.citizen_id)


def test_user_factory_makes_an_account_that_signs_in(ctx, client):
    sup = UserFactory(role="supervisor")
    assert sup.role == "supervisor" and sup.full_name == "Тест supervisor"
    assert users.authenticate(sup.username, "correct-horse-1").id == sup.id
    sign_in(client, sup)


def test_appeal_factory_registers_with_sla_and_history(ctx):
    op = UserFactory()
    appeal = AppealFactory(operator=op, category="emergency", topic="hot_water")
    assert appeal.status == "received" and appeal.operator_id == op.id and appeal.number
    assert appeal.resolve_by is not None and appeal.description == "Холодные батареи"
    assert appeal.description_enc and b"\xd0\xa5\xd0\xbe\xd0\xbb" not in bytes(appeal.description_enc)
    assert appeals.for_citizen(appeal.citizen_id)[0].id == appeal.id
    assert "appeal.create" in _actions(appeal_id=appeal.id)


def test_call_factory_stores_recording_transcript_and_checks(ctx, recordings):
    op = UserFactory()
    call = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True))
    assert call.status == "done" and call.operator_id == op.id and call.appeal_id and call.citizen_id
    # stored with the numbers in digits (issue 18): «Садовая, пять, восемь девятьсот двенадцать.» → «Садовая, 5, 8 912.»
    assert [s.text for s in call.segments] == [numbers.normalise(s["text"]) for s in GOOD_SEGMENTS]
    assert call.segments[3].text == "Садовая, 5, 8 912."
    raw = db.session.execute(sa.text("SELECT text_enc FROM segments WHERE call_id = :id"), {"id": call.id}).scalars()
    assert all("Горячая".encode() not in bytes(t) for t in raw)
    assert calls.recording_path(call).is_file()
    assert {r["code"] for r in qa.check_results(call.id)}
    assert "transcript.create" in _actions(call_id=call.id)
    # the automatic checks are QA processing: none without the citizen's QA consent
    assert qa.check_results(CallFactory(operator=op, citizen=CitizenFactory()).id) == []

    queued = CallFactory(operator=op, transcribed=False)
    assert queued.status != "done" and queued.appeal_id is None and not queued.segments
    silent = CallFactory(segments=[])
    assert silent.status == "no_speech"


def test_evaluation_factory_scores_yes_to_all(ctx, recordings):
    ev = EvaluationFactory(comment="Хорошо")
    assert ev.score == 100.0 and ev.comment == "Хорошо"
    assert db.session.get(User, ev.evaluator_id).role == "supervisor"
    assert db.session.get(User, ev.operator_id).role == "operator"
    assert "evaluation.create" in _actions(call_id=ev.call_id)
