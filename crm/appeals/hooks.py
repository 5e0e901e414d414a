"""The appeals package's reactions to hooks (:mod:`crm.hooks`), subscribed by the factory."""
from __future__ import annotations

from crm import hooks
from crm.appeals import notifications


def register() -> None:
    """Subscribe the appeals package's handlers (idempotent)."""
    hooks.subscribe("appeal.transitioned", notifications.after_transition)  # the citizen's status SMS
