"""The DPO package's reactions to hooks (:mod:`crm.hooks`), subscribed by the factory."""
from __future__ import annotations

from crm import hooks
from crm.dpo import alerts


def _checkpoint_restarted(line: int, reason: str) -> None:
    """A checkpoint began a new app key chain: alert the DPO (committed with the checkpoint's entry)."""
    alerts.raise_checkpoint_alert(line, reason)


def register() -> None:
    hooks.subscribe("audit.checkpoint_restarted", _checkpoint_restarted)
