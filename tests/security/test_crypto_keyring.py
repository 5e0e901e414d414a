"""The keyring on disk, start-up refusals, and blind-index budget checks (no database)."""
from __future__ import annotations

import base64
import os
import stat

import pytest

from crm.security import blind_index
from crm.security.keyring import (KeyError_, add_index_key, add_kek, init_keys, keys_fingerprint, load_keyring,
                                  retire_kek)


def test_init_creates_private_keys_and_never_overwrites(tmp_path):
    keys = tmp_path / "keys"
    assert init_keys(keys) is True
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    for f in keys.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    before = (keys / "kek-k1.key").read_text()
    assert init_keys(keys) is False
    assert (keys / "kek-k1.key").read_text() == before
    ring = load_keyring(keys, environ={})
    assert ring.active_id == "k1" and set(ring.index_roots) == {"i1"}


def test_add_promote_retire_and_ids_are_never_reused(tmp_path):
    keys = tmp_path / "keys"
    init_keys(keys)
    fp = keys_fingerprint(keys)
    assert add_kek(keys) == "k2"
    assert keys_fingerprint(keys) != fp
    assert load_keyring(keys, environ={}).active_id == "k2"
    with pytest.raises(KeyError_, match="k2"):
        retire_kek(keys, "k2")  # active
    retire_kek(keys, "k1")
    assert set(load_keyring(keys, environ={}).keks) == {"k2"}
    assert add_kek(keys) == "k3"
    assert add_index_key(keys) == "i2"
    assert set(load_keyring(keys, environ={}).index_roots) == {"i1", "i2"}


def test_missing_or_malformed_keys_are_named(tmp_path):
    keys = tmp_path / "keys"
    init_keys(keys)
    (keys / "active").write_text("k7")
    with pytest.raises(KeyError_, match="'k7'"):
        load_keyring(keys, environ={})
    (keys / "active").write_text("k1")
    (keys / "kek-k1.key").write_text(base64.b64encode(b"short").decode())
    with pytest.raises(KeyError_, match="kek-k1.key"):
        load_keyring(keys, environ={})
    with pytest.raises(KeyError_, match="no key-encryption key"):
        load_keyring(tmp_path / "nowhere", environ={})


def test_keys_from_the_environment(tmp_path):
    k = base64.b64encode(os.urandom(32)).decode()
    ring = load_keyring(tmp_path / "nowhere", environ={"CRM_KEK_K9": k, "CRM_KEK_ACTIVE": "k9", "CRM_INDEX_KEY": k})
    assert ring.active_id == "k9" and ring.kek("k9") == base64.b64decode(k)
    with pytest.raises(KeyError_, match="'k1'"):
        ring.kek("k1")


def _app(tmp_path, **cfg):
    from crm import create_app

    init_keys(tmp_path / "keys")
    return create_app({"INSTANCE_PATH": str(tmp_path), "SECRET_KEY": "x", "TESTING": True,
                       "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'crm.sqlite3'}", **cfg})


def test_start_up_refuses_a_leaky_blind_index(tmp_path):
    with pytest.raises(RuntimeError, match="leaks too much"):
        _app(tmp_path, CRM_EXPECTED_CITIZENS=1000, CRM_BLIND_INDEX_BITS=40)
    app = _app(tmp_path, CRM_EXPECTED_CITIZENS=1000)
    assert app.config["SQLALCHEMY_BINDS"]["keystore"].endswith("keystore.sqlite3")


def test_start_up_names_a_missing_active_key(tmp_path):
    init_keys(tmp_path / "keys")
    (tmp_path / "keys" / "active").write_text("k5")
    with pytest.raises(RuntimeError, match="'k5'"):
        _app(tmp_path)


def test_budget_formula():
    for n in (1_000, 100_000, 1_000_000, 50_000_000):
        blind_index.check_budget(blind_index.bits_for(n), n)
    assert blind_index.bits_for(1_000_000) == 17
    with pytest.raises(ValueError):
        blind_index.check_budget(30, 1_000_000)
