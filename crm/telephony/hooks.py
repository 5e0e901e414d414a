"""The telephony package's reactions to hooks (:mod:`crm.hooks`), subscribed by the factory."""
from __future__ import annotations

from crm import hooks
from crm.telephony import pop, services


def _export(citizen_id: str, **_: object) -> dict:
    """``citizen.export`` (the access export, 152-ФЗ ст. 14): ``{"telephony_calls": [...]}``
    (:func:`crm.telephony.services.export_for_citizen`), omitted when there are none."""
    rows = services.export_for_citizen(citizen_id)
    return {"telephony_calls": rows} if rows else {}


def register() -> None:
    """Subscribe the telephony package's handlers (idempotent)."""
    hooks.subscribe("citizen.export", _export)
    hooks.subscribe("appeal.registered", pop.link_registered_appeal)  # appeals taken during a call
    hooks.subscribe("telephony.caller", pop.caller_for_intake)  # the intake opened from the screen pop
