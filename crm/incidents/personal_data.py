"""The incidents' personal data, declared to :mod:`crm.security.registry` at start-up: a call attached
to an incident names its caller (``incident_calls.citizen_id``; cleared by erasure, so the incident
keeps counting the call but no longer says who rang), and an appeal's link to its incident tells
where the citizen lives (the incident's houses or street): an erased citizen's appeal page no longer
shows its incident (:func:`crm.incidents.hooks._appeal_page`)."""
from __future__ import annotations

from crm.incidents.models import IncidentCall
from crm.security import registry


def register() -> None:
    """Declare the attached calls' caller column."""
    registry.register_table(IncidentCall, lambda cid, owners: IncidentCall.citizen_id == cid,
                            encrypted=(), category="incident_calls", cleared=("citizen_id",))
