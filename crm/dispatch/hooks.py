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


def _assigned(appeal_id: str, executor_id: int, **_: object) -> None:
    """``appeal.assigned``: the executor's accounts are notified."""
    services.notify_assigned(appeal_id, executor_id)


def _incident_proposed(proposal_id: int, building_id: int, topic: str, appeals_count: int, **_: object) -> None:
    """``incident.proposed``: the supervisors are notified of the surge (once per proposal)."""
    services.notify_incident_proposed(proposal_id, building_id, topic, appeals_count)


def _queue_surge(surge_id: str, waiting: int, arrivals: int, window_min: float, address: str | None = None,
                 **_: object) -> None:
    """``queue.surge``: the supervisors are notified of the surge (once per surge)."""
    services.notify_queue_surge(surge_id, waiting, arrivals, window_min, address)


def _queue_surge_building(surge_id: str, building_id: int, address: str, callers: int, **_: object) -> None:
    """``queue.surge_building``: the supervisors are told of a building calling for an incident (once per
    surge and building)."""
    services.notify_queue_surge_building(surge_id, building_id, address, callers)


def _page(appeal, user, **_: object) -> dict | None:
    """``appeal.page``: the hand-over section (dispatchers)."""
    return services.assign_panel(appeal, user)


def _executor_page(appeal, user, **_: object) -> dict | None:
    """``appeal.page``: the executor's steps (its accounts)."""
    return services.executor_panel(appeal, user)


def _extension_page(appeal, user, **_: object) -> dict | None:
    """``appeal.page``: a pending extension request to decide (supervisors)."""
    return services.extension_panel(appeal, user)


def register() -> None:
    """Subscribe the dispatch package's handlers (idempotent)."""
    hooks.subscribe("appeal.clock_breached", _breached)
    hooks.subscribe("appeal.clock_warned", _warned)
    hooks.subscribe("appeal.assigned", _assigned)
    hooks.subscribe("incident.proposed", _incident_proposed)
    hooks.subscribe("queue.surge", _queue_surge)
    hooks.subscribe("queue.surge_building", _queue_surge_building)
    hooks.subscribe("appeal.page", _page)
    hooks.subscribe("appeal.page", _executor_page)
    hooks.subscribe("appeal.page", _extension_page)
