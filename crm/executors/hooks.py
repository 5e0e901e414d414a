"""The executors package's answers to hooks (:mod:`crm.hooks`), subscribed by the factory."""
from __future__ import annotations

from crm import hooks
from crm.executors import services


def _lookup(executor_id: int, **_: object):
    """``executor.lookup``: the executor row, or None (:func:`crm.executors.services.get`)."""
    return services.get(executor_id)


def register() -> None:
    """Subscribe the executors package's handlers (idempotent)."""
    hooks.subscribe("executor.lookup", _lookup)
