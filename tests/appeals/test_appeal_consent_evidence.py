"""Consents taken on the appeal intake carry their evidence (issue 13, point 6): each consent event
the operator's form records references the appeal and, when the call's recording is attached, that
call and the moment (seconds) in it where the citizen answered; the API's consents reference the
appeal (152-ФЗ ст. 9 ч. 3: the controller demonstrates the consent)."""
from __future__ import annotations

import re

from tests.appeals.test_appeal_intake import (api_body, clean_side_effects, counts, form_data, op, operator,  # noqa: F401
                                path_of, post_form)
from tests.factories import CitizenFactory
from tests.wavs import tone_wav


def _events(citizen_id: str):
    from crm.consent import services as consent
    from crm.db import db

    db.session.expire_all()
    return {e.purpose_code: e for e in consent.for_citizen(citizen_id)}


def test_form_consents_reference_the_call_the_moment_and_the_appeal(op, ctx):
    from crm.calls import services as calls

    cid = CitizenFactory().id
    resp = post_form(op, cid, form_data(tone_wav(), consent_sms="yes", consent_recording="no", consent_at="1:05"))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    appeal_id = re.fullmatch(r"/appeals/([^/]+)", path_of(resp)).group(1)
    [call] = calls.for_appeal(appeal_id)
    events = _events(cid)
    assert set(events) == {"sms_notifications", "call_recording_qa"}
    for e in events.values():
        assert (e.appeal_id, e.evidence_call_id, e.evidence_offset_s, e.evidence_kind) == (
            appeal_id, call.id, 65.0, "call"), e.purpose_code
    assert events["sms_notifications"].given and not events["call_recording_qa"].given


def test_form_consents_without_a_recording_reference_the_appeal(op, ctx):
    cid = CitizenFactory().id
    resp = post_form(op, cid, form_data(None, consent_sms="yes", consent_recording="yes", consent_at=""))
    assert resp.status_code == 302
    appeal_id = re.fullmatch(r"/appeals/([^/]+)", path_of(resp)).group(1)
    for e in _events(cid).values():
        assert (e.appeal_id, e.evidence_call_id, e.evidence_offset_s) == (appeal_id, None, None)


def test_a_bad_moment_is_refused_and_registers_nothing(op, ctx):
    cid = CitizenFactory().id
    before = counts()
    resp = post_form(op, cid, form_data(tone_wav(), consent_at="пять минут"))
    assert resp.status_code == 422 and "мм:сс" in resp.get_data(as_text=True)
    assert counts() == before


def test_api_consents_reference_the_appeal(ctx, client, operator, api_token):
    resp = client.post("/api/v1/appeals", json=api_body("Доказательнова Ирина", "8 916 700-90-01"),
                       headers=api_token(operator))
    assert resp.status_code == 201, resp.get_json()
    data = resp.get_json()
    events = _events(data["citizen_id"])
    assert {e.appeal_id for e in events.values()} == {data["id"]} and len(events) == 2


def test_a_refusal_on_the_intake_form_withdraws_and_queues_the_destruction_after_the_commit(op, ctx):
    from crm import jobs
    from crm.consent import services as consent

    c = CitizenFactory(qa_consent=True)
    assert consent.qa_allowed(c.id)
    resp = post_form(op, c.id, form_data(tone_wav(), consent_sms="unknown", consent_recording="no", consent_at="0:40"))
    assert resp.status_code == 302
    assert not consent.qa_allowed(c.id)
    granted = next(e for e in consent.for_citizen(c.id) if e.given)
    assert granted.status == "withdrawn" and granted.withdrawn_call_id is not None
    assert granted.withdrawn_offset_s == 40.0
    queued = [j.func_name for j in jobs.queue("default").jobs if j.args == (c.id,)]
    assert queued == ["crm.calls.jobs.destroy_qa_recordings_job"]



def test_another_citizens_call_is_no_evidence(ctx, make_user, login):
    """A consent cannot cite another citizen's call as its evidence (re-audit 6C): the operator's
    one-click consent on appeal A naming B's call is refused and nothing is recorded, so B's
    recording is not kept as "consent evidence" when B withdraws. A's own call still is evidence."""
    from crm.citizens import services as citizens
    from crm.consent import services as consent
    from crm.consent.models import ConsentEvent
    from crm.db import db
    from tests.factories import CallFactory

    operator = make_user("operator")
    a_call = CallFactory(operator=operator, citizen=CitizenFactory())
    b_call = CallFactory(operator=operator, citizen=CitizenFactory())
    client = login(operator)
    resp = client.post(f"/appeals/{a_call.appeal_id}/consents",
                       data={"purpose": "call_recording_qa", "given": "yes", "call_id": b_call.id},
                       follow_redirects=True)
    assert "другим заявителем" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.execute(db.select(ConsentEvent).where(ConsentEvent.evidence_call_id == b_call.id)).first() is None
    assert consent.evidence_call_ids([b_call.id]) == set()
    event = consent.record(citizens.get(a_call.citizen_id), "call_recording_qa", channel="call",
                           evidence_call_id=a_call.id, appeal_id=a_call.appeal_id)
    assert event.evidence_call_id == a_call.id and consent.evidence_call_ids([a_call.id]) == {a_call.id}
