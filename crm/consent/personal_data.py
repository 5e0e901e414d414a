"""Consent's tables about a citizen, declared to :mod:`crm.security.registry` at start-up. They hold
no ciphertext but the outbox's sealed texts of messages not yet sent (consents, requests and the messages sent are the controller's evidence and are kept, with
masked phone numbers, for their own retention periods), so erasure leaves them, except the
withdrawal's registration number the DPO typed (``consent_events.withdrawn_ref``), which it clears;
the registry knows which rows belong to a citizen."""
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
    # the withdrawal's registration number was typed by the DPO: erasure clears it (the trigger of
    # migration 0025 lets it go to NULL on the otherwise append-only table)
    registry.register_table(ConsentEvent, lambda cid, owners: ConsentEvent.citizen_id == cid, encrypted=(),
                            cleared=("withdrawn_ref",), category="consent_withdrawal_refs")
