"""The dispatch package's reactions to hooks (:mod:`crm.hooks`), subscribed by the factory."""
from __future__ import annotations

from crm import hooks
from crm.dispatch import services


def _breached(appeal_id: str, code: str, cycle: int, **_: object) -> None:
    """``appeal.clock_breached``: the appeal goes on the supervisors' breach queue (idempotent)."""
    services.escalate_breach(appeal_id, code, cycle)


def _warned(appeal_id: str, code: str, cycle: int, level: int, **_: object) -> None:
    """``appeal.clock_warned``: at 80 % the executor (or, with none, the supervisors) is notified."""
    services.clock_warned(appeal_id, code, cycle, level)


def register() -> None:
    """Subscribe the dispatch package's handlers (idempotent)."""
    hooks.subscribe("appeal.clock_breached", _breached)
    hooks.subscribe("appeal.clock_warned", _warned)
