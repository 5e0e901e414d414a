"""The telephony's personal data, declared to :mod:`crm.security.registry` at start-up: the citizen's
side of each call record (``caller``) and the address of its recording at the PBX while it waits to be
fetched (``recording_url``, which may name the number), and the call records as data-key owners (a caller not yet known
as a citizen has the number encrypted under the record's own key)."""
from __future__ import annotations

from crm.security import registry
from crm.telephony.models import TelephonyCall


def register() -> None:
    """Declare the call records' table and key owners."""
    registry.register_table(TelephonyCall, lambda cid, owners: TelephonyCall.citizen_id == cid,
                            encrypted=("caller_enc", "recording_url_enc"), category="telephony_caller_numbers")
    registry.register_key_owner(TelephonyCall.id, TelephonyCall.citizen_id)
