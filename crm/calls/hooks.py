"""The calls package's answers to hooks (:mod:`crm.hooks`), subscribed by the factory."""
from __future__ import annotations

from crm import hooks
from crm.calls import services
from crm.citizens import services as citizens


def _latest_call(appeal_id: str, **_: object) -> str | None:
    """``appeal.latest_call``: the id of the appeal's latest call, or None."""
    calls = services.for_appeal(appeal_id)
    return calls[-1].id if calls else None


def _activity(**_: object) -> list:
    """``retention.activity``: calls with a citizen."""
    return [services.activity_select()]


def _recordings(before, **_: object) -> int:
    """``retention.recordings``: recordings of citizens not erased made before ``before``."""
    return services.count_recordings_before(before, citizens.live_ids_select())


def _lookup(call_id: str, **_: object):
    """``call.lookup``: the call row, or None (:func:`crm.calls.services.get`)."""
    return services.get(call_id)


def register() -> None:
    """Subscribe the calls package's handlers (idempotent)."""
    hooks.subscribe("appeal.latest_call", _latest_call)
    hooks.subscribe("retention.activity", _activity)
    hooks.subscribe("retention.recordings", _recordings)
    hooks.subscribe("call.lookup", _lookup)
