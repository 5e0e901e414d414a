"""Start-up checks of the security design, run by :func:`crm.create_app`.

* the blind-index budget (:func:`crm.security.blind_index.check_config`): an index too wide for
  the expected number of citizens would make nearly every value unique, so the app refuses to start;
* the keyring, when one exists: a malformed, missing or unknown active key is named here rather
  than on the first read (``crm init`` creates the first keys, so an absent keyring is allowed);
* the key store's engine settings (:func:`crm.security.keystore.init_app`). The key store's schema
  and its KEK check values are verified on first use in each process (:func:`crm.security.keystore.ensure`),
  because ``create_app`` also serves ``crm init`` before any database exists;
* the controller's name and address (``CRM_CONTROLLER_NAME``, ``CRM_CONTROLLER_ADDRESS``): without
  them no consent can be recorded (:func:`crm.consent.services.record` refuses), so a warning is
  logged rather than the app refusing to start (appeals are still taken).
"""
from __future__ import annotations

import os
from pathlib import Path

from crm.security import blind_index, keystore
from crm.security.keyring import KeyError_, load_keyring


def init_app(app) -> None:
    """Raise ``RuntimeError`` with a message naming the problem (and the key id) when the app
    must not start."""
    blind_index.check_config(app.config)
    keys_dir = Path(app.config["CRM_KEYS_DIR"])
    if any(keys_dir.glob("kek-*.key")) or os.environ.get("CRM_KEK_ACTIVE"):
        try:
            load_keyring(keys_dir)
        except KeyError_ as exc:
            raise RuntimeError(f"refusing to start: {exc}") from None
    keystore.init_app(app)
    check_controller(app)


def check_controller(app) -> bool:
    """Log a warning when the controller's name or address is not configured; True when both are."""
    from crm.consent.services import controller_configured

    if controller_configured(app.config):
        return True
    app.logger.warning("CRM_CONTROLLER_NAME / CRM_CONTROLLER_ADDRESS are not set in instance/config.py: "
                       "consents cannot be recorded until the operator of personal data (152-FZ art. 9 "
                       "part 4) is configured")
    return False
