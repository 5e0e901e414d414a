"""Key-encryption keys (KEKs) and the blind-index root keys.

Layout of ``instance/keys/`` (directory mode 0700, files 0600)::

    kek-<id>.key        32 random bytes, base64; one per KEK version (k1, k2, …)
    active              the id of the KEK that wraps new data keys
    index.key           32 random bytes, base64; blind-index root key version ``i1`` (HKDF)
    index-<id>.key      later blind-index root key versions (i2, …), added by ``crm keys index start``
    retired/            KEKs retired by ``crm keys retire`` (no longer loaded); destroy them once the
                        key store's backups made before the rotation have aged out (30 days)

A KEK may instead come from the environment as ``CRM_KEK_<ID>`` (base64) with
``CRM_KEK_ACTIVE=<ID>``, e.g. injected by an external KMS at start-up; the index root key as
``CRM_INDEX_KEY`` (``i1``) and ``CRM_INDEX_KEY_<ID>`` for later versions.

A running process notices a key added or promoted by ``crm keys rotate`` in another process: see
:func:`keys_fingerprint`, used by :func:`crm.security.crypto.keyring`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

INDEX_V1 = "i1"


class KeyError_(Exception):
    """A key is missing or malformed. The message names the key id."""


@dataclass
class Keyring:
    """KEKs by id, the id of the active KEK, and blind-index root keys by version id."""

    keks: dict[str, bytes]
    active_id: str
    index_root: bytes
    index_roots: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self):
        self.index_roots.setdefault(INDEX_V1, self.index_root)

    def kek(self, key_id: str) -> bytes:
        """The KEK with this id; raises :class:`KeyError_` naming it when absent."""
        try:
            return self.keks[key_id]
        except KeyError:
            raise KeyError_(f"key-encryption key {key_id!r} is not in the keyring "
                            f"(have: {', '.join(sorted(self.keks)) or 'none'})") from None

    def index_key(self, version: str) -> bytes:
        """The blind-index root key of ``version``; raises :class:`KeyError_` naming it when absent."""
        try:
            return self.index_roots[version]
        except KeyError:
            raise KeyError_(f"blind-index root key {version!r} is not in the keyring") from None


def kek_check_value(kek: bytes) -> str:
    """A key check value: HMAC-SHA256(kek, "crm-kek-check-v1"), first 16 bytes as hex. Stored in the
    key store next to the KEK id so a wrong key file is named at start-up; it reveals nothing of
    the key."""
    return hmac.new(kek, b"crm-kek-check-v1", hashlib.sha256).hexdigest()[:32]


def _decode(name: str, text: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (ValueError, TypeError):
        raise KeyError_(f"{name}: not base64") from None
    if len(raw) != 32:
        raise KeyError_(f"{name}: expected 32 bytes, got {len(raw)}")
    return raw


def _read_key(path: Path) -> bytes:
    return _decode(path.name, path.read_text())


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


def keys_fingerprint(keys_dir: Path) -> tuple:
    """Names, sizes and modification times of the key files: changes when a key is added,
    promoted or retired. One ``scandir`` of a small folder (microseconds)."""
    try:
        return tuple(sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size)
                            for e in os.scandir(keys_dir) if e.is_file()))
    except FileNotFoundError:
        return ()


def load_keyring(keys_dir: Path, environ=None) -> Keyring:
    """Read KEKs from ``keys_dir`` and ``CRM_KEK_*`` variables.

    Raises :class:`KeyError_` with a message naming what is missing."""
    environ = os.environ if environ is None else environ
    keks: dict[str, bytes] = {}
    if keys_dir.is_dir():
        for path in sorted(keys_dir.glob("kek-*.key")):
            keks[path.stem[len("kek-"):]] = _read_key(path)
    for name, value in environ.items():
        if name.startswith("CRM_KEK_") and name != "CRM_KEK_ACTIVE":
            keks[name[len("CRM_KEK_"):].lower()] = _decode(name, value)
    active = environ.get("CRM_KEK_ACTIVE")
    if not active and (keys_dir / "active").exists():
        active = (keys_dir / "active").read_text().strip()
    if not keks or not active:
        raise KeyError_(f"no key-encryption key found in {keys_dir} (run `crm init`)")
    if active not in keks:
        raise KeyError_(f"active key-encryption key {active!r} is not in the keyring")
    roots: dict[str, bytes] = {}
    if environ.get("CRM_INDEX_KEY"):
        roots[INDEX_V1] = _decode("CRM_INDEX_KEY", environ["CRM_INDEX_KEY"])
    elif (keys_dir / "index.key").exists():
        roots[INDEX_V1] = _read_key(keys_dir / "index.key")
    else:
        raise KeyError_(f"blind-index key index.key missing in {keys_dir}")
    if keys_dir.is_dir():
        for path in sorted(keys_dir.glob("index-*.key")):
            roots[path.stem[len("index-"):]] = _read_key(path)
    for name, value in environ.items():
        if name.startswith("CRM_INDEX_KEY_"):
            roots[name[len("CRM_INDEX_KEY_"):].lower()] = _decode(name, value)
    return Keyring(keks=keks, active_id=active, index_root=roots[INDEX_V1], index_roots=roots)


def _next_id(keys_dir: Path, pattern: str, prefix: str) -> str:
    numbers = []
    for p in list(keys_dir.glob(pattern)) + list((keys_dir / "retired").glob(pattern)):
        tail = p.stem.split("-", 1)[1][len(prefix):]
        if tail.isdigit():
            numbers.append(int(tail))
    if prefix == "i":
        numbers.append(1)  # index.key is i1
    return f"{prefix}{max(numbers, default=0) + 1}"


def add_kek(keys_dir: Path, promote: bool = True) -> str:
    """Add a new KEK version (``k<N+1>``, never reusing a retired id) and, by default, make it the
    active one (atomic rename of ``active``). Returns its id."""
    kid = _next_id(keys_dir, "kek-k*.key", "k")
    _write_new(keys_dir / f"kek-{kid}.key", base64.b64encode(secrets.token_bytes(32)).decode())
    if promote:
        promote_kek(keys_dir, kid)
    return kid


def promote_kek(keys_dir: Path, kid: str) -> None:
    """Make ``kid`` the active KEK. Raises :class:`KeyError_` when its file is absent."""
    if not (keys_dir / f"kek-{kid}.key").exists():
        raise KeyError_(f"key-encryption key {kid!r} has no file in {keys_dir}")
    tmp = keys_dir / "active.tmp"
    tmp.write_text(kid)
    os.chmod(tmp, 0o600)
    tmp.replace(keys_dir / "active")


def retire_kek(keys_dir: Path, kid: str) -> Path:
    """Move ``kek-<kid>.key`` to ``retired/`` so no process loads it any more. The caller checks
    that no data key uses it. Returns the new path. Raises :class:`KeyError_`."""
    src = keys_dir / f"kek-{kid}.key"
    if not src.exists():
        raise KeyError_(f"key-encryption key {kid!r} has no file in {keys_dir}")
    active = (keys_dir / "active").read_text().strip() if (keys_dir / "active").exists() else None
    if kid == active:
        raise KeyError_(f"key-encryption key {kid!r} is the active key; rotate first")
    dest_dir = keys_dir / "retired"
    dest_dir.mkdir(mode=0o700, exist_ok=True)
    dest = dest_dir / src.name
    src.replace(dest)
    return dest


def add_index_key(keys_dir: Path) -> str:
    """Add a new blind-index root key version (``i<N+1>``). Returns its id."""
    kid = _next_id(keys_dir, "index-i*.key", "i")
    _write_new(keys_dir / f"index-{kid}.key", base64.b64encode(secrets.token_bytes(32)).decode())
    return kid
