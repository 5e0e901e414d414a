"""Switching a purpose's ``requires_consent`` off is a two-person decision (re-audit 13.3): one DPO
proposes (logged in the access log's chain), the change waits on the DPO's register page, the
proposer cannot approve it, a different DPO can; either may reject it. Other register columns
still change at once."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from crm.db import db
from tests.clients import SharedContextClient

PURPOSE = "sms_notifications"


def _log(action: str) -> list:
    from crm.security.models import AccessLogEntry

    db.session.commit()
    return list(db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action == action)
                                   .order_by(AccessLogEntry.seq)).scalars())


def _requires(code: str = PURPOSE) -> bool:
    from crm.consent import services as consent

    db.session.expire_all()
    return consent.get_purpose(code).requires_consent


@pytest.fixture()
def dpos(make_user):
    return make_user("dpo"), make_user("dpo")


def test_one_dpo_cannot_switch_consent_off_alone(ctx, dpos, make_user):
    from crm.consent import services as consent

    first, _ = dpos
    purpose = consent.get_purpose(PURPOSE)
    assert purpose.requires_consent
    changed = consent.update_purpose(purpose, {"requires_consent": False, "retention_days": 400}, user=first)
    assert changed == ["retention_days"], "the other column changes at once"
    assert _requires() is True, "consent is still required"
    [proposal] = consent.pending_proposals()
    assert (proposal.purpose_code, proposal.field, proposal.value, proposal.proposed_by) == (
        PURPOSE, "requires_consent", False, first.id)
    [entry] = _log("purpose.propose")
    assert entry.actor_id == first.id and entry.purpose == PURPOSE and proposal.id in entry.detail
    # proposing again adds nothing
    consent.update_purpose(consent.get_purpose(PURPOSE), {"requires_consent": False}, user=first)
    assert len(consent.pending_proposals()) == 1 and len(_log("purpose.propose")) == 1

    # the proposer cannot approve their own proposal, in the service or on the page
    with pytest.raises(consent.ConsentError) as err:
        consent.approve_proposal(proposal.id, user=first)
    assert err.value.code == "same_person"
    page = SharedContextClient(ctx, first)
    html = page.get("/dpo/purposes").get_data(as_text=True)
    assert 'id="purpose-proposals"' in html and f'data-proposal="{proposal.id}"' in html
    assert "подтвердить должен другой ответственный" in html
    page.post(f"/dpo/purposes/proposals/{proposal.id}/approve")
    assert _requires() is True and not _log("purpose.approve")
    # nor can anyone who is not a DPO
    from crm.security.permissions import PermissionDenied

    with pytest.raises(PermissionDenied):
        consent.approve_proposal(proposal.id, user=make_user("admin"))
    assert _requires() is True


def test_a_second_dpo_approves(ctx, dpos):
    from crm.consent import services as consent

    first, second = dpos
    consent.update_purpose(consent.get_purpose(PURPOSE), {"requires_consent": False}, user=first)
    [proposal] = consent.pending_proposals()
    page = SharedContextClient(ctx, second)
    html = page.get("/dpo/purposes").get_data(as_text=True)
    assert f'/dpo/purposes/proposals/{proposal.id}/approve' in html
    resp = page.post(f"/dpo/purposes/proposals/{proposal.id}/approve")
    assert resp.status_code == 302
    assert _requires() is False
    db.session.refresh(proposal)
    assert (proposal.status, proposal.decided_by) == ("approved", second.id)
    [entry] = _log("purpose.approve")
    assert entry.actor_id == second.id and proposal.id in entry.detail
    assert consent.pending_proposals() == []
    assert 'id="purpose-proposals"' not in page.get("/dpo/purposes").get_data(as_text=True)


def test_a_rejected_proposal_changes_nothing(ctx, dpos):
    from crm.consent import services as consent

    first, second = dpos
    consent.update_purpose(consent.get_purpose(PURPOSE), {"requires_consent": False}, user=first)
    [proposal] = consent.pending_proposals()
    consent.reject_proposal(proposal.id, user=second)
    assert _requires() is True and consent.pending_proposals() == []
    assert len(_log("purpose.reject")) == 1
    with pytest.raises(consent.ConsentError) as err:
        consent.approve_proposal(proposal.id, user=second)
    assert err.value.code == "bad_state" and _requires() is True
    # switching consent back on needs no second person
    consent.update_purpose(consent.get_purpose("appeal_processing"), {"requires_consent": True}, user=first)
    assert _requires("appeal_processing") is True
