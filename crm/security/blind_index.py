"""Blind indexes: truncated HMAC-SHA256 of a normalised value under a per-index key.

Keys are derived from a blind-index root key of the keyring with HKDF-SHA256 (info =
``b"bidx|" + name``); root key version ``i1`` is ``instance/keys/index.key``, later versions
``index-i<N>.key`` (added when an index is rotated). Truncation: ``bits = floor(log2(expected_citizens / 4))``
(at least 16), so a lookup in a full database returns about four unrelated candidates besides the
true matches; they are decrypted and filtered by the caller. An index wider than
``log2(expected_citizens) + 8`` bits would make nearly every value unique and is refused at
start-up (:func:`check_budget`, called by :func:`crm.create_app`).

Indexes: ``phone`` (E.164), ``surname`` (lower-case, ё→е), ``name_building`` (surname + normalised
building address) and ``building`` (the address alone, also kept on appeals for statistics).

Rotation of an index key (every index): each index has two columns (slots ``a`` and ``b``, see
:data:`SLOTS`) and a row in ``blind_index_state`` saying which root key version fills each slot and
which slot lookups read. Writers fill every slot that has a version (:func:`write_values`); lookups
read one slot (:func:`lookup`); ``crm keys index start|switch|drop NAME`` walk the phases
(:mod:`crm.security.rotation`). Processes cache the states for ``CRM_BIDX_STATE_TTL_S`` seconds; the
phases wait longer than that between steps.

``building`` is also copied onto each appeal (``appeals.building_key``, the read slot's value when
the appeal is made; kept after the citizen's erasure as a de-identified statistic) and compared
with the citizen's values of both slots for repeat detection (:func:`row_values`); see
:func:`crm.security.rotation.index_drop` for how appeals follow a rotation of that key.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

from crm.security.crypto import keyring
from crm.security.keyring import INDEX_V1
from crm.db import db
from crm.security.models import BlindIndexState

_KEYS: dict[tuple[bytes, str], bytes] = {}

# index name -> (column of slot a, column of slot b) on ``citizens`` (None: no slot b, not rotatable)
SLOTS: dict[str, tuple[str, str | None]] = {
    "phone": ("phone_bidx", "phone_bidx_b"),
    "surname": ("surname_bidx", "surname_bidx_b"),
    "name_building": ("name_building_bidx", "name_building_bidx_b"),
    "building": ("building_key", "building_key_b"),
}


def bits_for(expected: int) -> int:
    """Index width in bits for ``expected`` rows (see module docstring)."""
    return max(16, int(math.floor(math.log2(max(expected, 4) / 4))))


def check_budget(bits: int, expected: int) -> None:
    """Raise ``ValueError`` when ``bits`` would leak near-unique values for ``expected`` rows."""
    if bits > math.log2(max(expected, 2)) + 8:
        raise ValueError(f"blind index of {bits} bits for {expected} citizens leaks too much; "
                         f"at most {int(math.log2(max(expected, 2)) + 8)}")


def configured_bits(config) -> int:
    """The index width configured for an app (``CRM_BLIND_INDEX_BITS`` or from the expected size)."""
    return int(config["CRM_BLIND_INDEX_BITS"] or bits_for(int(config["CRM_EXPECTED_CITIZENS"])))


def check_config(config) -> None:
    """Start-up check of the blind-index budget; raises ``RuntimeError`` with a clear message."""
    expected = config["CRM_EXPECTED_CITIZENS"]
    if not expected or int(expected) < 1:
        raise RuntimeError("CRM_EXPECTED_CITIZENS must be a positive number of citizens")
    bits = configured_bits(config)
    if not 8 <= bits <= 64:
        raise RuntimeError(f"CRM_BLIND_INDEX_BITS={bits}: must be between 8 and 64")
    try:
        check_budget(bits, expected)
    except ValueError as exc:
        raise RuntimeError(f"refusing to start: {exc} (lower CRM_BLIND_INDEX_BITS or leave it unset)") from None


def derive_key(root: bytes, name: str) -> bytes:
    """The per-index key: HKDF-SHA256(root, salt=None, info=b"bidx|" + name), 32 bytes."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"bidx|" + name.encode()).derive(root)


def _key(name: str, version: str = INDEX_V1) -> bytes:
    root = keyring().index_key(version)
    key = _KEYS.get((root, name))
    if key is None:
        key = derive_key(root, name)
        _KEYS[(root, name)] = key
    return key


def mac_value(key: bytes, normalised: str, bits: int) -> str:
    """Lower-case hex of the first ``bits`` bits of HMAC-SHA256(key, normalised)."""
    mac = hmac.new(key, normalised.encode("utf-8"), hashlib.sha256).digest()
    return format(int.from_bytes(mac[:8], "big") >> (64 - bits), "x")


def compute(name: str, normalised: str, version: str = INDEX_V1) -> str:
    """Blind-index value of ``normalised`` for index ``name`` under root key ``version``."""
    return mac_value(_key(name, version), normalised, configured_bits(current_app.config))


def normalise_name(value: str) -> str:
    """Lower-case, ё→е, single spaces."""
    return " ".join(value.lower().replace("ё", "е").split())


def normalise_building(address: str) -> str:
    """An address reduced for matching: :func:`normalise_name` with commas and dots replaced by
    spaces (not re-collapsed: the stored ``building_key`` values were made this way)."""
    return normalise_name(address).replace(",", " ").replace(".", " ")


# --- which key fills which column ----------------------------------------------------------------

@dataclass(frozen=True)
class IndexState:
    name: str
    key_a: str | None
    key_b: str | None
    read_slot: str

    def column(self, slot: str) -> str:
        col = SLOTS[self.name][0 if slot == "a" else 1]
        if col is None:
            raise ValueError(f"blind index {self.name} has no slot {slot}")
        return col

    @property
    def read_column(self) -> str:
        return self.column(self.read_slot)

    @property
    def read_key(self) -> str:
        key = self.key_a if self.read_slot == "a" else self.key_b
        if key is None:
            raise RuntimeError(f"blind index {self.name}: slot {self.read_slot} has no key")
        return key


DEFAULT = {name: IndexState(name, INDEX_V1, None, "a") for name in SLOTS}


def state(name: str, *, fresh: bool = False) -> IndexState:
    """The state of index ``name``. The states of all indexes are read together (one SELECT through
    ``db.session``, in the caller's transaction) and cached per app for ``CRM_BIDX_STATE_TTL_S``
    seconds; ``fresh`` reads them again. No ``blind_index_state`` row: :data:`DEFAULT`."""
    if SLOTS[name][1] is None:
        return DEFAULT[name]

    app = current_app
    cache = app.extensions.setdefault("crm_bidx_state", {})
    hit = cache.get("*")
    now = time.monotonic()
    if hit is not None and not fresh and now < hit[0]:
        return hit[1].get(name, DEFAULT[name])
    rows = db.session.execute(db.select(BlindIndexState.name, BlindIndexState.key_a, BlindIndexState.key_b,
                                        BlindIndexState.read_slot)).all()
    states = {r.name: IndexState(r.name, r.key_a, r.key_b, r.read_slot) for r in rows if r.name in SLOTS}
    cache["*"] = (now + float(app.config["CRM_BIDX_STATE_TTL_S"]), states)
    return states.get(name, DEFAULT[name])


def forget_state() -> None:
    """Drop this process's cached states (after a rotation step; other processes wait out the TTL)."""
    current_app.extensions.pop("crm_bidx_state", None)


def write_values(name: str, normalised: str | None) -> dict[str, str | None]:
    """``{column: value}`` for every column of index ``name`` (None for a slot without a key or a
    missing value), to be set on the row."""
    st = state(name)
    out: dict[str, str | None] = {}
    for slot, key in (("a", st.key_a), ("b", st.key_b)):
        col = SLOTS[name][0 if slot == "a" else 1]
        if col is None:
            continue
        out[col] = compute(name, normalised, key) if (key and normalised) else None
    return out


def lookup(name: str, normalised: str) -> tuple[str, str]:
    """``(column, value)`` to search index ``name`` for ``normalised``: the column of the slot lookups
    read now and the value under that slot's key. Raises ``RuntimeError`` if that slot has no key."""
    st = state(name)
    return st.read_column, compute(name, normalised, st.read_key)


def read_value(name: str, row) -> str | None:
    """The value a row (a ``Citizen``) holds in the read slot of index ``name`` (None: none)."""
    return getattr(row, state(name).read_column)


def row_values(name: str, row) -> list[str]:
    """The distinct non-NULL values a row holds in the slots of index ``name`` (read slot first):
    during a rotation a row's value under either key version, for matching copies of it made under
    the other one (``appeals.building_key``)."""
    st = state(name)
    first = st.read_column
    cols = [first] + [c for c in SLOTS[name] if c is not None and c != first]
    out: list[str] = []
    for col in cols:
        v = getattr(row, col)
        if v is not None and v not in out:
            out.append(v)
    return out


def search_values(name: str, normalised: str) -> list[str]:
    """The values of ``normalised`` under every key version index ``name`` has now (read slot first):
    for matching copies of the index made under either key while it rotates (``appeals.building_key``)."""
    st = state(name)
    out: list[str] = []
    for key in (st.read_key, st.key_a, st.key_b):
        if key:
            v = compute(name, normalised, key)
            if v not in out:
                out.append(v)
    return out
