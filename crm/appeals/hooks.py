"""The appeals package's reactions to hooks (:mod:`crm.hooks`), subscribed by the factory."""
from __future__ import annotations

from crm import hooks
from crm.appeals import notifications, services


def _export(citizen_id: str, purpose: str, erased: bool, **_: object) -> dict:
    """``citizen.export``: ``{"appeals": [...]}`` (:func:`crm.appeals.services.export_for_citizen`)."""
    return {"appeals": services.export_for_citizen(citizen_id, purpose=purpose, erased=erased)}


def _appeal_numbers(citizen_id: str, **_: object) -> list[str]:
    """``citizen.appeal_numbers``: the numbers of the citizen's appeals."""
    return services.numbers_for_citizen(citizen_id)


def _active_work(**_: object) -> list:
    """``retention.active_work``: the citizens with an appeal still being worked on."""
    return [services.active_citizens_select()]


def _activity(**_: object) -> list:
    """``retention.activity``: appeals created, resolved and closed."""
    return services.activity_selects()


def _lookup(appeal_id: str, **_: object):
    """``appeal.lookup``: the appeal row, or None (:func:`crm.appeals.services.get`)."""
    return services.get(appeal_id)


def _masking_address(appeal_id: str | None, **_: object):
    """``appeal.masking_address``: the appeal's house for masking (:func:`crm.appeals.services.address_for_masking`)."""
    return services.address_for_masking(appeal_id)


def _incident_closing(incident_id: int, appeal_ids: list[str], text: str, user_id: int | None = None,
                      **_: object):
    """``incident.closing``: resolve the linked appeals in the closing's transaction; returns what runs after
    its commit (:func:`crm.appeals.services.resolve_for_incident`)."""
    return services.resolve_for_incident(appeal_ids, text, user_id=user_id)


def _surge_accepted(incident_id: int, building_id: int, topic: str, since, **_: object) -> list[str]:
    """``incident.surge_accepted``: the surge's open appeals are linked to the new incident."""
    return services.link_surge(incident_id, building_id, topic, since)


def register() -> None:
    """Subscribe the appeals package's handlers (idempotent)."""
    hooks.subscribe("appeal.transitioned", notifications.after_transition)  # the citizen's status messages
    hooks.subscribe("appeal.registered", notifications.after_registration)  # the appeal number, to the citizen
    hooks.subscribe("citizen.export", _export)
    hooks.subscribe("citizen.appeal_numbers", _appeal_numbers)
    hooks.subscribe("retention.activity", _activity)
    hooks.subscribe("retention.active_work", _active_work)
    hooks.subscribe("appeal.lookup", _lookup)
    hooks.subscribe("appeal.masking_address", _masking_address)
    hooks.subscribe("incident.closing", _incident_closing)
    hooks.subscribe("incident.surge_accepted", _surge_accepted)
