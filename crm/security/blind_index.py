"""Blind indexes: truncated HMAC-SHA256 of a normalised value under a per-index key.

Keys are derived from the keyring's index root key with HKDF-SHA256 (info = ``b"bidx|" + name``).
Truncation: ``bits = floor(log2(expected_citizens / 4))`` (at least 16), so a lookup in a full
database returns about four unrelated candidates besides the true matches; they are decrypted and
filtered by the caller. An index wider than ``log2(expected_citizens) + 8`` bits would make nearly
every value unique and is refused at start-up (:func:`check_budget`).
"""
from __future__ import annotations

import hashlib
import hmac
import math

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

from crm.security.crypto import keyring

_KEYS: dict[tuple[bytes, str], bytes] = {}


def bits_for(expected: int) -> int:
    """Index width in bits for ``expected`` rows (see module docstring)."""
    return max(16, int(math.floor(math.log2(max(expected, 4) / 4))))


def check_budget(bits: int, expected: int) -> None:
    """Raise ``ValueError`` when ``bits`` would leak near-unique values for ``expected`` rows."""
    if bits > math.log2(max(expected, 2)) + 8:
        raise ValueError(f"blind index of {bits} bits for {expected} citizens leaks too much; "
                         f"at most {int(math.log2(max(expected, 2)) + 8)}")


def _key(name: str) -> bytes:
    root = keyring().index_root
    key = _KEYS.get((root, name))
    if key is None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"bidx|" + name.encode()).derive(root)
        _KEYS[(root, name)] = key
    return key


def compute(name: str, normalised: str) -> str:
    """Blind-index value of ``normalised`` for index ``name``: lower-case hex of the truncated MAC."""
    bits = current_app.config.get("CRM_BLIND_INDEX_BITS") or bits_for(current_app.config["CRM_EXPECTED_CITIZENS"])
    mac = hmac.new(_key(name), normalised.encode("utf-8"), hashlib.sha256).digest()
    value = int.from_bytes(mac[:8], "big") >> (64 - bits)
    return format(value, "x")


def normalise_name(value: str) -> str:
    """Lower-case, ё→е, single spaces."""
    return " ".join(value.lower().replace("ё", "е").split())
