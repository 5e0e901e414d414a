"""The latest answer wins (issue 13, point 6): a refusal recorded after a consent withdraws it,
everywhere the consent's state is read; answers recorded at the same instant are ordered
deterministically (the refusal counts as the later one)."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from crm.db import db
from tests.factories import CitizenFactory


def test_a_refusal_after_a_consent_withdraws_it(ctx, make_user, api_token):
    from crm import hooks
    from crm.consent import services as consent
    from crm.consent.models import DataSubjectRequest

    op = make_user("operator")
    c = CitizenFactory()
    seen = []
    listener = lambda **kw: seen.append(kw)  # noqa: E731
    hooks.subscribe("consent.changed", listener)
    try:
        grant = consent.record(c, "call_recording_qa", channel="call", operator_id=op.id)
        assert consent.qa_allowed(c.id)
        refusal = consent.record(c, "call_recording_qa", channel="call", given=False, operator_id=op.id)
    finally:
        hooks.unsubscribe("consent.changed", listener)
    db.session.expire_all()
    grant = consent.get(grant.id)
    assert not consent.qa_allowed(c.id) and not consent.has_consent(c.id, "call_recording_qa")
    # the earlier consent reads as withdrawn (API, self-service page, DPO history), by the refusal
    assert grant.status == "withdrawn" and grant.withdrawn_at == refusal.at
    assert grant.withdrawn_ref == f"refusal {refusal.id}" and refusal.status == "refused"
    listed = ctx.test_client().get(f"/api/v1/citizens/{c.id}/consents", headers=api_token(op)).get_json()["items"]
    assert [(i["id"], i["status"]) for i in listed] == [(grant.id, "withdrawn"), (refusal.id, "refused")]
    # ... and starts the legal clock of a withdrawal (destroy within 30 days, 152-ФЗ ст. 21 ч. 5)
    reqs = db.session.execute(sa.select(DataSubjectRequest).where(DataSubjectRequest.citizen_id == c.id)).scalars().all()
    assert [(r.type, r.purpose_code, r.consent_id) for r in reqs] == [("withdrawal", "call_recording_qa", grant.id)]
    assert [s["status"] for s in seen] == ["active", "withdrawn"]
    assert {(s["citizen_id"], s["purpose"]) for s in seen} == {(c.id, "call_recording_qa")}

    # a refusal with nothing in force opens no request; a new consent after it is in force again
    consent.record(c, "call_recording_qa", given=False)
    assert db.session.execute(sa.select(sa.func.count()).select_from(DataSubjectRequest)).scalar_one() == 1
    again = consent.record(c, "call_recording_qa")
    assert again.status == "active" and consent.qa_allowed(c.id)
    from crm import jobs

    for q in jobs.QUEUES:  # the withdrawal queued the destruction of the recordings (none here)
        jobs.queue(q).empty()


def test_answers_at_the_same_instant_are_ordered_deterministically(ctx, monkeypatch):
    from crm.consent import services as consent

    instant = datetime(2026, 11, 3, 10, 0, 0, tzinfo=timezone.utc)
    monkeypatch.setattr(consent, "utcnow", lambda: instant)
    first_refused, first_given = CitizenFactory(), CitizenFactory()
    # a refusal then a consent, and a consent then a refusal, each pair at one instant: no consent either way
    consent.record(first_refused, "sms_notifications", given=False)
    consent.record(first_refused, "sms_notifications")
    consent.record(first_given, "sms_notifications")
    consent.record(first_given, "sms_notifications", given=False)
    for c in (first_refused, first_given):
        events = consent.for_citizen(c.id)
        assert {e.at for e in events} == {instant}
        assert not consent.has_consent(c.id, "sms_notifications"), c
        assert consent.active_consent(c.id, "sms_notifications") is None
        assert not consent.may_notify(c.id, "sms_notifications")
