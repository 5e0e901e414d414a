"""The calls package's answers to hooks (:mod:`crm.hooks`), subscribed by the factory."""
from __future__ import annotations

from flask import current_app

from crm import hooks, jobs
from crm.calls import services
from crm.citizens import services as citizens
from crm.security import audit


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


def _consent_changed(citizen_id: str, purpose: str, status: str, **_: object) -> None:
    """``consent.changed``: a withdrawn ``call_recording_qa`` consent enqueues the destruction of the
    citizen's recordings kept only for QA (:func:`crm.calls.jobs.destroy_qa_recordings_job`). With
    Redis down nothing is lost: the daily retention run destroys them (``retention.destroy_recordings``)."""
    if purpose != services.QA_PURPOSE or status != "withdrawn":
        return
    try:
        jobs.enqueue("crm.calls.jobs.destroy_qa_recordings_job", citizen_id)
    except Exception as exc:  # redis unavailable: the retention run picks the withdrawal up
        current_app.logger.warning("destroy_qa_recordings_job not enqueued for %s: %s", citizen_id,
                                   type(exc).__name__)


def _destroy_recordings(citizen_id: str, actor: audit.Actor | None = None, **_: object):
    """``retention.destroy_recordings``: destroy now (:func:`crm.calls.services.destroy_qa_recordings`);
    returns the destruction record or None."""
    return services.destroy_qa_recordings(citizen_id, actor=actor)


def register() -> None:
    """Subscribe the calls package's handlers (idempotent)."""
    hooks.subscribe("appeal.latest_call", _latest_call)
    hooks.subscribe("retention.activity", _activity)
    hooks.subscribe("retention.recordings", _recordings)
    hooks.subscribe("call.lookup", _lookup)
    hooks.subscribe("consent.changed", _consent_changed)
    hooks.subscribe("retention.destroy_recordings", _destroy_recordings)
