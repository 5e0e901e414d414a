"""Start-up checks of the security design, run by :func:`crm.create_app`.

* the blind-index budget (:func:`crm.security.blind_index.check_config`): an index too wide for
  the expected number of citizens would make nearly every value unique, so the app refuses to start;
* the keyring, when one exists: a malformed, missing or unknown active key is named here rather
  than on the first read (``crm init`` creates the first keys, so an absent keyring is allowed);
* the key store's engine settings (:func:`crm.security.keystore.init_app`). The key store's schema
  and its KEK check values are verified on first use in each process (:func:`crm.security.keystore.ensure`),
  because ``create_app`` also serves ``crm init`` before any database exists;
* the personal-data registry (:func:`check_personal_data`, run by the factory once every feature
  has registered its tables): an encrypted column no feature declares would survive an erasure, so
  the app refuses to start.
"""
from __future__ import annotations

import os
from pathlib import Path

from crm.security import blind_index, keystore, registry
from crm.security.fields import encrypted_tables
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


def check_personal_data() -> None:
    """Raise ``RuntimeError`` when a model has an encrypted column that no entry of the personal-data
    registry (:mod:`crm.security.registry`) declares, or no feature declared the citizens' table."""
    try:
        registry.check_complete(encrypted_tables())
    except registry.RegistryError as exc:
        raise RuntimeError(f"refusing to start: {exc}") from None
