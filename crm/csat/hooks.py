"""The CSAT package's reactions to hooks (:mod:`crm.hooks`), subscribed by the factory."""
from __future__ import annotations

from crm import hooks
from crm.csat import services


def _page(appeal, user, **_: object) -> dict | None:
    """``appeal.page``: the citizen's survey answers (staff; reading a comment is logged)."""
    return services.appeal_panel(appeal, user)


def _export(citizen_id: str, purpose: str, erased: bool, **_: object) -> dict:
    """``citizen.export``: ``{"csat_surveys": [...]}`` (:func:`crm.csat.services.export_for_citizen`)."""
    return {"csat_surveys": services.export_for_citizen(citizen_id, purpose=purpose, erased=erased)}


def register() -> None:
    """Subscribe the CSAT package's handlers (idempotent)."""
    hooks.subscribe("appeal.transitioned", services.after_transition)  # the survey after a closure
    hooks.subscribe("appeal.page", _page)
    hooks.subscribe("citizen.export", _export)
    hooks.subscribe("consent.changed", services.after_consent_change)  # a withdrawal clears the comments
    hooks.subscribe("retention.purpose_expired", services.expire_comments)  # so does the end of the period
