"""The incidents package's reactions to hooks (:mod:`crm.hooks`), subscribed by the factory."""
from __future__ import annotations

from crm import hooks
from crm.incidents import services


def _appeal_page(appeal, user, **_: object) -> dict | None:
    """``appeal.page``: the incident the appeal was opened about (its text, state, a link for supervisors)."""
    incident = services.get(services.incident_of_appeal(appeal.id))
    if incident is None:
        return None
    return {"template": "incidents/_appeal_panel.html", "incident": services.brief(incident),
            "closing_text": incident.closing_text, "user_role": getattr(user, "role", None)}


def register() -> None:
    """Subscribe the incidents package's handlers (idempotent)."""
    hooks.subscribe("appeal.page", _appeal_page)
