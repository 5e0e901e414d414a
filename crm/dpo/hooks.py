"""The DPO package's reactions to hooks (:mod:`crm.hooks`), subscribed by the factory."""
from __future__ import annotations

from crm import hooks
from crm.dpo import alerts


def _checkpoint_restarted(line: int, reason: str) -> None:
    """A checkpoint began a new app key chain: alert the DPO (committed with the checkpoint's entry)."""
    alerts.raise_checkpoint_alert(line, reason)


def _repeated_failures(scope: str, subject: str, failures: int, **_: object) -> None:
    """Repeated failed sign-ins against one account or from one address: alert the DPO."""
    alerts.raise_login_alert(scope, subject, failures)


def register() -> None:
    hooks.subscribe("audit.checkpoint_restarted", _checkpoint_restarted)
    hooks.subscribe("auth.repeated_failures", _repeated_failures)
