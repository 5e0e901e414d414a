"""Consent's tables about a citizen, declared to :mod:`crm.security.registry` at start-up. They hold
no ciphertext but the outbox's sealed texts of messages not yet sent (consents, requests and the messages sent are the controller's evidence and are kept, with
masked phone numbers, for their own retention periods), so erasure leaves them, except the
registration numbers typed for a paper consent and its withdrawal (``consent_events.evidence_ref`` and
``withdrawn_ref``), which it clears; the registry knows which rows belong to a citizen."""
from __future__ import annotations

from crm.consent.models import ConsentEvent, DataSubjectRequest, SelfServiceGrant, SmsMessage
from crm.security import registry


def register() -> None:
    """Declare consent's tables (no encrypted columns)."""
    for model in (DataSubjectRequest, SelfServiceGrant):
        registry.register_table(model, lambda cid, owners, m=model: m.citizen_id == cid, encrypted=())
    # a notification's whole text is sealed under the citizen's key until it has left
    registry.register_table(SmsMessage, lambda cid, owners: SmsMessage.citizen_id == cid, encrypted=("body_enc",),
                            category="notification_texts")
    # the registration numbers of a paper consent and of a withdrawal were typed by staff: erasure clears
    # them (the triggers of migrations 0025 and 0034 let them go to NULL on the otherwise append-only
    # table, never to another value); ``evidence_kind`` stays and says there was one
    registry.register_table(ConsentEvent, lambda cid, owners: ConsentEvent.citizen_id == cid, encrypted=(),
                            cleared=("evidence_ref", "withdrawn_ref"), category="consent_refs")
