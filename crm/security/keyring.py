"""Key-encryption keys (KEKs) and the blind-index root key.

Layout of ``instance/keys/`` (directory mode 0700, files 0600)::

    kek-<id>.key        32 random bytes, base64; one per KEK version
    active              the id of the KEK that wraps new data keys
    index.key           32 random bytes, base64; root of the blind-index keys (HKDF)

A KEK may instead come from the environment as ``CRM_KEK_<ID>`` (base64) with
``CRM_KEK_ACTIVE=<ID>``, e.g. injected by an external KMS at start-up.
"""
from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path


class KeyError_(Exception):
    """A key is missing or malformed. The message names the key id."""


@dataclass
class Keyring:
    keks: dict[str, bytes]
    active_id: str
    index_root: bytes

    def kek(self, key_id: str) -> bytes:
        """The KEK with this id; raises :class:`KeyError_` naming it when absent."""
        try:
            return self.keks[key_id]
        except KeyError:
            raise KeyError_(f"key-encryption key {key_id!r} is not in the keyring") from None


def _read_key(path: Path) -> bytes:
    raw = base64.b64decode(path.read_text().strip())
    if len(raw) != 32:
        raise KeyError_(f"{path.name}: expected 32 bytes, got {len(raw)}")
    return raw


def _write_new(path: Path, data: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(data)


def init_keys(keys_dir: Path) -> bool:
    """Create the first KEK and the index root key if the folder holds none. Never overwrites.

    Returns True when keys were created."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(keys_dir, 0o700)
    if any(keys_dir.glob("kek-*.key")):
        return False
    kid = "k1"
    _write_new(keys_dir / f"kek-{kid}.key", base64.b64encode(secrets.token_bytes(32)).decode())
    _write_new(keys_dir / "active", kid)
    if not (keys_dir / "index.key").exists():
        _write_new(keys_dir / "index.key", base64.b64encode(secrets.token_bytes(32)).decode())
    return True


def load_keyring(keys_dir: Path, environ=os.environ) -> Keyring:
    """Read KEKs from ``keys_dir`` and ``CRM_KEK_*`` variables.

    Raises :class:`KeyError_` with a message naming what is missing."""
    keks: dict[str, bytes] = {}
    if keys_dir.is_dir():
        for path in sorted(keys_dir.glob("kek-*.key")):
            keks[path.stem[len("kek-"):]] = _read_key(path)
    for name, value in environ.items():
        if name.startswith("CRM_KEK_") and name != "CRM_KEK_ACTIVE":
            keks[name[len("CRM_KEK_"):].lower()] = base64.b64decode(value)
    active = environ.get("CRM_KEK_ACTIVE")
    if not active and (keys_dir / "active").exists():
        active = (keys_dir / "active").read_text().strip()
    if not keks or not active:
        raise KeyError_(f"no key-encryption key found in {keys_dir} (run `crm init`)")
    if active not in keks:
        raise KeyError_(f"active key-encryption key {active!r} is not in the keyring")
    index_b64 = environ.get("CRM_INDEX_KEY")
    if index_b64:
        index_root = base64.b64decode(index_b64)
    elif (keys_dir / "index.key").exists():
        index_root = _read_key(keys_dir / "index.key")
    else:
        raise KeyError_(f"blind-index key index.key missing in {keys_dir}")
    return Keyring(keks=keks, active_id=active, index_root=index_root)


def add_kek(keys_dir: Path, promote: bool = True) -> str:
    """Add a new KEK version (``k<N+1>``) and, by default, make it the active one. Returns its id."""
    numbers = [int(p.stem[5:]) for p in keys_dir.glob("kek-k*.key") if p.stem[5:].isdigit()]
    kid = f"k{max(numbers, default=0) + 1}"
    _write_new(keys_dir / f"kek-{kid}.key", base64.b64encode(secrets.token_bytes(32)).decode())
    if promote:
        tmp = keys_dir / "active.tmp"
        tmp.write_text(kid)
        os.chmod(tmp, 0o600)
        tmp.replace(keys_dir / "active")
    return kid
