"""Consent's tables about a citizen, declared to :mod:`crm.security.registry` at start-up. They hold
no ciphertext (consents, requests and the SMS sent are the controller's evidence and are kept, with
masked phone numbers, for their own retention periods), so erasure leaves them; the registry still
knows which rows belong to a citizen."""
from __future__ import annotations

from crm.consent.models import ConsentEvent, DataSubjectRequest, SelfServiceGrant, SmsMessage
from crm.security import registry


def register() -> None:
    """Declare consent's tables (no encrypted columns)."""
    for model in (ConsentEvent, DataSubjectRequest, SelfServiceGrant, SmsMessage):
        registry.register_table(model, lambda cid, owners, m=model: m.citizen_id == cid, encrypted=())
