"""The incidents package's reactions to hooks (:mod:`crm.hooks`), subscribed by the factory."""
from __future__ import annotations

from crm import hooks
from crm.citizens import services as citizens
from crm.incidents import services


def _appeal_page(appeal, user, **_: object) -> dict | None:
    """``appeal.page``: the incident the appeal was opened about (its text, state, a link for supervisors);
    nothing for the appeal of an erased citizen (the incident's houses would say where they lived)."""
    citizen = citizens.get(appeal.citizen_id) if appeal.citizen_id else None
    if citizen is not None and citizen.erased_at is not None:
        return None
    incident = services.get(services.incident_of_appeal(appeal.id))
    if incident is None:
        return None
    return {"template": "incidents/_appeal_panel.html", "incident": services.brief(incident),
            "closing_text": incident.closing_text, "user_role": getattr(user, "role", None)}


def _activity(**_: object) -> list:
    """``retention.activity``: a call counted on an incident is a contact with the citizen."""
    return [services.activity_select()]


def _export(citizen_id: str, **_: object) -> dict:
    """``citizen.export``: ``{"incident_calls": [...]}`` (:func:`crm.incidents.services.export_for_citizen`)."""
    return {"incident_calls": services.export_for_citizen(citizen_id)}


def register() -> None:
    """Subscribe the incidents package's handlers (idempotent)."""
    hooks.subscribe("appeal.page", _appeal_page)
    hooks.subscribe("retention.activity", _activity)
    hooks.subscribe("citizen.export", _export)
