"""Envelope encryption: per-owner data keys (DEKs) wrapped by the keyring's KEK, AES-256-GCM.

Field ciphertext, format version 1 (bytes)::

    0x01 | dek_id (16 bytes, UUID) | nonce (12) | ciphertext + tag (16)

The associated data is ``b"crm1|" + table|column|row_id|owner_id`` so a ciphertext copied to
another row, column or citizen fails to decrypt (:class:`DecryptError`).

Wrapped DEK, version 1: ``0x01 | len(kek_id) | kek_id | nonce (12) | AESGCM(kek)(dek, aad=b"dek1|" + dek_id|owner)``.

Recording files (:func:`encrypt_stream`): a header ``b"CRMR" 0x01 | dek_id (16) | chunk_size (4, BE)``
then chunks of ``nonce | ct+tag``; each chunk's associated data is ``b"crmr1|" + file_key|index|last``
(last = 1 on the final chunk), so a truncated, extended or reordered file fails to decrypt.

Transient ciphertext (:func:`seal_transient`, data that lives minutes in Redis, e.g. the PBX's events
waiting to be processed): ``b"CRMT" 0x01 | len(kek_id) | kek_id | nonce (12) | ct+tag`` under
``HMAC-SHA256(kek, b"crm-transient-v1|" + purpose)``, associated data ``b"crmt1|" + purpose``: no key
store round trip, readable by every process holding the keyring, unreadable once that KEK is retired.

Known-answer vectors for every format version: ``tests/data/crypto/kat_v1.json``. The pure
functions (:func:`seal_field`, :func:`open_field`, :func:`wrap_dek`, :func:`unwrap_dek`,
:func:`seal_stream`, :func:`open_stream`) accept an injected nonce for those tests only; in the
application nonces are always 12 fresh random bytes.

Data keys live in the key store (:mod:`crm.security.keystore`), a database separate from the main
one. A failed decryption raises (never returns garbage or an empty value) and is written to the
access log as ``security.decrypt_failed`` in its own transaction, even when the surrounding request
fails (:func:`_security_event`).
"""
from __future__ import annotations

import hashlib
import hmac
import io
import logging
import os
import struct
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from crm.db import db
from crm.security import audit, keystore, registry
from crm.security.keyring import Keyring, KeyError_, keys_fingerprint, load_keyring

FORMAT_V1 = 1
CHUNK_SIZE = 64 * 1024
_MAGIC = b"CRMR"
_FIELD_MIN = 1 + 16 + 12 + 16
log = logging.getLogger(__name__)


class DecryptError(Exception):
    """A ciphertext does not decrypt under its key and associated data (tampered, moved or
    its key erased)."""


class KeyErased(DecryptError):
    """The owner's data key no longer exists: the data was crypto-shredded."""


# --- keyring ---------------------------------------------------------------------------------------

_RING_LOCK = threading.Lock()


def keyring(force_reload: bool = False) -> Keyring:
    """The application's keyring, loaded once per app and reloaded when ``instance/keys/`` changes
    (checked at most every ``CRM_KEYRING_RELOAD_S`` seconds) or when ``force_reload`` (a data key
    names a KEK this process has not seen yet: another process rotated). Raises :class:`KeyError_`."""
    app = current_app
    ring = app.extensions.get("crm_keyring")
    state = app.extensions.get("crm_keyring_state")
    now = time.monotonic()
    if ring is not None and state is not None and state["ring"] is ring and not force_reload and now < state["check_at"]:
        return ring
    keys_dir = Path(app.config["CRM_KEYS_DIR"])
    with _RING_LOCK:
        fp = keys_fingerprint(keys_dir)
        ring = app.extensions.get("crm_keyring")
        state = app.extensions.get("crm_keyring_state")
        injected = ring is not None and state is None  # a keyring placed by the caller: keep it until the files change
        if ring is None or force_reload or (not injected and (state["ring"] is not ring or state["fp"] != fp)):
            ring = load_keyring(keys_dir)
        app.extensions["crm_keyring"] = ring
        app.extensions["crm_keyring_state"] = {"ring": ring, "fp": fp,
                                               "check_at": now + float(app.config["CRM_KEYRING_RELOAD_S"])}
        return ring


def reset_keyring(app=None) -> None:
    """Forget the loaded keyring (after this process changed the key files)."""
    app = app or current_app
    app.extensions.pop("crm_keyring", None)
    app.extensions.pop("crm_keyring_state", None)


# --- pure functions (format version 1) -------------------------------------------------------------

def _dek_aad(dek_id: str, owner_id: str) -> bytes:
    return f"dek1|{dek_id}|{owner_id}".encode()


def wrap_dek(ring: Keyring, dek: bytes, dek_id: str, owner_id: str, kek_id: str | None = None,
             *, nonce: bytes | None = None) -> tuple[str, bytes]:
    """Wrap ``dek`` with the active (or named) KEK. Returns ``(kek_id, wrapped bytes)``.
    ``nonce`` is for known-answer tests only."""
    kid = kek_id or ring.active_id
    nonce = nonce or os.urandom(12)
    ct = AESGCM(ring.kek(kid)).encrypt(nonce, dek, _dek_aad(dek_id, owner_id))
    kb = kid.encode()
    return kid, bytes([FORMAT_V1, len(kb)]) + kb + nonce + ct


def wrapped_kek_id(wrapped: bytes) -> str:
    """The KEK id written in a wrapped DEK."""
    if not wrapped or wrapped[0] != FORMAT_V1:
        raise DecryptError("unknown wrapped data key format")
    return bytes(wrapped[2:2 + wrapped[1]]).decode()


def unwrap_dek(ring: Keyring, wrapped: bytes, dek_id: str, owner_id: str) -> bytes:
    """Unwrap a DEK; raises :class:`KeyError_` naming a missing KEK, :class:`DecryptError` on tamper
    or a wrong KEK."""
    wrapped = bytes(wrapped)
    if not wrapped or wrapped[0] != FORMAT_V1:
        raise DecryptError(f"data key {dek_id}: unknown wrap format")
    n = wrapped[1]
    kid = wrapped[2:2 + n].decode()
    nonce = wrapped[2 + n:14 + n]
    try:
        return AESGCM(ring.kek(kid)).decrypt(nonce, wrapped[14 + n:], _dek_aad(dek_id, owner_id))
    except InvalidTag:
        raise DecryptError(f"data key {dek_id} does not unwrap under key-encryption key {kid!r} "
                           "(wrong key, or the key store row was tampered with)") from None


def field_aad(table: str, column: str, row_id: str, owner_id: str) -> bytes:
    """Associated data binding a field ciphertext to its place."""
    return f"crm1|{table}|{column}|{row_id}|{owner_id}".encode()


def seal_field(dek: bytes, dek_id: str, plaintext: bytes, aad: bytes, *, nonce: bytes | None = None) -> bytes:
    """Version-1 field ciphertext of ``plaintext`` under ``dek``. ``nonce`` for tests only."""
    nonce = nonce or os.urandom(12)
    return bytes([FORMAT_V1]) + uuid.UUID(dek_id).bytes + nonce + AESGCM(dek).encrypt(nonce, plaintext, aad)


def blob_dek_id(blob: bytes) -> str:
    """The data key id written in a version-1 field ciphertext; raises :class:`DecryptError`."""
    if not blob or blob[0] != FORMAT_V1 or len(blob) < _FIELD_MIN:
        raise DecryptError("not a version-1 ciphertext")
    return str(uuid.UUID(bytes=bytes(blob[1:17])))


def open_field(dek: bytes, blob: bytes, aad: bytes) -> bytes:
    """Plaintext of a version-1 field ciphertext; raises :class:`DecryptError`."""
    blob = bytes(blob)
    try:
        return AESGCM(dek).decrypt(blob[17:29], blob[29:], aad)
    except InvalidTag:
        raise DecryptError("authentication failed") from None


_TRANSIENT = b"CRMT\x01"


def _transient_key(kek: bytes, purpose: str) -> bytes:
    return hmac.new(kek, b"crm-transient-v1|" + purpose.encode(), hashlib.sha256).digest()


def seal_transient(plaintext: bytes, purpose: str) -> bytes:
    """``plaintext`` sealed for a short stay outside the database (Redis) under a key derived from the
    active KEK for ``purpose`` (format in the module docstring). Raises :class:`KeyError_` without a
    keyring. Costs one HMAC and one AES-GCM (microseconds): no key-store access."""
    ring = keyring()
    kid = ring.active_id.encode()
    nonce = os.urandom(12)
    key = _transient_key(ring.kek(ring.active_id), purpose)
    return (_TRANSIENT + bytes([len(kid)]) + kid + nonce
            + AESGCM(key).encrypt(nonce, plaintext, b"crmt1|" + purpose.encode()))


def open_transient(blob: bytes, purpose: str) -> bytes:
    """The plaintext of :func:`seal_transient`'s ``blob`` for ``purpose``; raises :class:`DecryptError`
    for another purpose, a damaged blob or a KEK no longer in the keyring."""
    blob = bytes(blob)
    if not blob.startswith(_TRANSIENT) or len(blob) < len(_TRANSIENT) + 1 + 12 + 16:
        raise DecryptError("not a transient ciphertext")
    n = blob[len(_TRANSIENT)]
    at = len(_TRANSIENT) + 1
    kid, nonce, body = blob[at:at + n].decode("ascii", "replace"), blob[at + n:at + n + 12], blob[at + n + 12:]
    try:
        kek = keyring().kek(kid)
    except KeyError_:
        raise DecryptError(f"key-encryption key {kid!r} is not in the keyring") from None
    try:
        return AESGCM(_transient_key(kek, purpose)).decrypt(nonce, body, b"crmt1|" + purpose.encode())
    except InvalidTag:
        raise DecryptError("authentication failed") from None


def _chunk_aad(file_key: str, index: int, last: bool) -> bytes:
    return f"crmr1|{file_key}|{index}|{int(last)}".encode()


def seal_stream(src: BinaryIO, dst: BinaryIO, *, dek_id: str, dek: bytes, file_key: str,
                chunk_size: int = CHUNK_SIZE, nonces: Iterable[bytes] | None = None) -> int:
    """Encrypt ``src`` into ``dst`` in chunks (format above). Returns plaintext bytes written.
    ``nonces`` (one per chunk) for known-answer tests only."""
    aead = AESGCM(dek)
    nonce_iter = iter(nonces) if nonces is not None else None
    dst.write(_MAGIC + bytes([FORMAT_V1]) + uuid.UUID(dek_id).bytes + struct.pack(">I", chunk_size))
    total, index = 0, 0
    chunk = src.read(chunk_size)
    while True:
        nxt = src.read(chunk_size) if chunk else b""
        last = not nxt
        nonce = next(nonce_iter) if nonce_iter is not None else os.urandom(12)
        dst.write(nonce + aead.encrypt(nonce, chunk, _chunk_aad(file_key, index, last)))
        total += len(chunk)
        index += 1
        if last:
            return total
        chunk = nxt


def _stream_header(src: BinaryIO, file_key: str) -> tuple[str, int]:
    header = src.read(4 + 1 + 16 + 4)
    if len(header) != 25 or header[:4] != _MAGIC or header[4] != FORMAT_V1:
        raise DecryptError(f"recording {file_key}: not an encrypted recording")
    (chunk_size,) = struct.unpack(">I", header[21:25])
    return str(uuid.UUID(bytes=header[5:21])), chunk_size


def open_stream(src: BinaryIO, *, dek: bytes, file_key: str, chunk_size: int) -> Iterator[bytes]:
    """Plaintext chunks of a recording whose header was already read; raises :class:`DecryptError`
    on a truncated, reordered or tampered file."""
    aead = AESGCM(dek)
    size = 12 + chunk_size + 16
    block = src.read(size)
    index = 0
    while True:
        if len(block) < 28:
            raise DecryptError(f"recording {file_key}: truncated at chunk {index}")
        nxt = src.read(size)
        last = not nxt
        try:
            yield aead.decrypt(block[:12], block[12:], _chunk_aad(file_key, index, last))
        except InvalidTag:
            raise DecryptError(f"recording {file_key}: chunk {index} fails authentication "
                               "(truncated, reordered or tampered)") from None
        if last:
            return
        block = nxt
        index += 1


# --- data keys -----------------------------------------------------------------------------------

_DEK_CACHE: "OrderedDict[str, bytes]" = OrderedDict()  # dek_id -> dek (this process)
_OWNER_CACHE: "OrderedDict[str, str]" = OrderedDict()  # owner_id -> dek_id
_DEK_CACHE_MAX = 4096


def _cache_put(dek_id: str, dek: bytes, owner_id: str | None = None) -> None:
    _DEK_CACHE[dek_id] = dek
    _DEK_CACHE.move_to_end(dek_id)
    while len(_DEK_CACHE) > _DEK_CACHE_MAX:
        _DEK_CACHE.popitem(last=False)
    if owner_id is not None:
        _OWNER_CACHE[owner_id] = dek_id
        _OWNER_CACHE.move_to_end(owner_id)
        while len(_OWNER_CACHE) > _DEK_CACHE_MAX:
            _OWNER_CACHE.popitem(last=False)


def forget_cached_key(dek_id: str | None = None, owner_id: str | None = None) -> None:
    """Drop a DEK from this process's caches (after shredding)."""
    if owner_id is not None:
        dek_id = _OWNER_CACHE.pop(owner_id, None) or dek_id
    if dek_id is not None:
        _DEK_CACHE.pop(dek_id, None)


def clear_caches() -> None:
    """Drop every data key this process has cached (and which owner uses which key), so the next
    read unwraps keys from the key store again: as a fresh process would (tests; after restoring
    the key store from a backup)."""
    _DEK_CACHE.clear()
    _OWNER_CACHE.clear()


def _unwrap_row(dek_id: str, owner_id: str, wrapped: bytes) -> bytes:
    """Unwrap with the current keyring; when the row names a KEK this process has not loaded yet
    (rotation in another process), reload the keyring once."""
    try:
        return unwrap_dek(keyring(), wrapped, dek_id, owner_id)
    except KeyError_:
        try:
            return unwrap_dek(keyring(force_reload=True), wrapped, dek_id, owner_id)
        except KeyError_ as exc:
            raise KeyError_(f"data key {dek_id}: {exc}") from None


def dek_for_owner(owner_id: str, create: bool = True) -> tuple[str, bytes]:
    """The owner's ``(dek_id, dek)``. A new DEK is created, wrapped under the active KEK and
    **committed to the key store at once** (its own transaction, before the caller's main-database
    commit: a DEK without its row is harmless, a row without its DEK would be lost).

    Raises :class:`KeyErased` when the owner has none and ``create`` is False, or was erased."""
    dek_id = _OWNER_CACHE.get(owner_id)
    if dek_id is not None:
        dek = _DEK_CACHE.get(dek_id)
        if dek is not None:
            return dek_id, dek
    row = keystore.find_by_owner(owner_id)
    if row is None:
        if not create:
            raise KeyErased(f"no data key for {owner_id}: erased or never created")
        dek = AESGCM.generate_key(256)
        dek_id = str(uuid.uuid4())
        kid, wrapped = wrap_dek(keyring(), dek, dek_id, owner_id)
        if keystore.insert(dek_id, owner_id, kid, wrapped):
            _cache_put(dek_id, dek, owner_id)
            return dek_id, dek
        row = keystore.find_by_owner(owner_id)  # another process made one meanwhile
        if row is None:
            raise KeyErased(f"no data key for {owner_id}")
    dek = _DEK_CACHE.get(row.id)
    if dek is None:
        dek = _unwrap_row(row.id, owner_id, row.wrapped)
    _cache_put(row.id, dek, owner_id)
    return row.id, dek


_POOL_LOCK = threading.Lock()


def reserve_owner_id() -> str:
    """A new owner id (e.g. for a citizen about to be registered) whose DEK is **already committed**
    in the key store, so registering costs no key-store commit of its own.

    DEKs are made ``CRM_DEK_POOL`` at a time in one key-store transaction (one disk sync instead of
    one per citizen) and handed out by this process; the commit-order rule of
    :mod:`crm.security.keystore` holds (the DEK is durable before the row that uses it). Ids left
    unused when the process ends are orphan DEKs, harmless and removed by ``crm keys gc``. A forked
    child never reuses its parent's pool (the pid is checked)."""
    app = current_app
    size = int(app.config["CRM_DEK_POOL"])
    if size <= 1:
        return str(uuid.uuid4())
    with _POOL_LOCK:
        pool = app.extensions.get("crm_dek_pool")
        if pool is None or pool["pid"] != os.getpid():
            pool = app.extensions["crm_dek_pool"] = {"pid": os.getpid(), "items": []}
        if not pool["items"]:
            ring = keyring()
            batch = []
            for _ in range(size):
                owner_id, dek_id, dek = str(uuid.uuid4()), str(uuid.uuid4()), AESGCM.generate_key(256)
                kid, wrapped = wrap_dek(ring, dek, dek_id, owner_id)
                batch.append((owner_id, dek_id, dek, kid, wrapped))
            keystore.insert_many([(d, o, k, w) for o, d, _, k, w in batch])
            pool["items"] = [(o, d, dek) for o, d, dek, _, _ in reversed(batch)]
        owner_id, dek_id, dek = pool["items"].pop()
    _cache_put(dek_id, dek, owner_id)
    return owner_id


def _dek_by_id(dek_id: str, owner_id: str) -> bytes:
    dek = _DEK_CACHE.get(dek_id)
    if dek is not None:
        return dek
    row = keystore.find(dek_id)
    if row is None:
        raise KeyErased(f"data key {dek_id} of {owner_id} was erased (crypto-shredded) or never existed")
    if row.owner_id != owner_id:
        raise DecryptError(f"data key {dek_id} belongs to another owner")
    dek = _unwrap_row(dek_id, owner_id, row.wrapped)
    _cache_put(dek_id, dek, owner_id)
    return dek


def prefetch_keys(owner_ids: Iterable[str]) -> None:
    """Load and unwrap the DEKs of ``owner_ids`` with one key-store query (a lookup that will
    decrypt several candidates). Missing keys are left for the read to report."""
    missing = [o for o in set(owner_ids) if _OWNER_CACHE.get(o) not in _DEK_CACHE]
    if not missing:
        return
    for row in keystore.find_many_by_owner(missing):
        try:
            _cache_put(row.id, _unwrap_row(row.id, row.owner_id, row.wrapped), row.owner_id)
        except (DecryptError, KeyError_):
            pass  # the read of that candidate raises and logs it


#: A stand-in for a candidate that is not there (:func:`prefetch_keys_evenly`): a data key wrapped under
#: the active KEK and a field sealed under it, per process and KEK, never stored.
_DECOY: dict[str, tuple] = {}
_DECOY_PLACE = {"table": "citizens", "column": "phone"}


def _decoy(ring: Keyring) -> tuple[str, str, bytes, bytes, str]:
    """``(owner_id, dek_id, wrapped, blob, row_id)`` of this process's decoy under ``ring``'s active KEK."""
    kid = ring.active_id
    found = _DECOY.get(kid)
    if found is None:
        owner_id, dek_id, row_id = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
        dek = AESGCM.generate_key(256)
        _, wrapped = wrap_dek(ring, dek, dek_id, owner_id)
        blob = seal_field(dek, dek_id, b"+70000000000", field_aad(row_id=row_id, owner_id=owner_id, **_DECOY_PLACE))
        found = _DECOY[kid] = (owner_id, dek_id, wrapped, blob, row_id)
    return found


def prefetch_keys_evenly(owner_ids: Iterable[str], at_least: int = 1) -> list[dict]:
    """Load the DEKs of ``owner_ids`` for a look-up whose cost must not tell whether anything was
    found (the self-service sign-in: a known and an unknown phone, issue 13 point 4). Unlike
    :func:`prefetch_keys` the keys are always read from the key store, never taken from this process's
    cache (a key cached by an earlier read would make a known number's look-up faster), and the work
    is padded with decoys up to ``at_least`` owners: one key-store query naming ``max(n, at_least)``
    owners (a decoy's random id matches no row) and one unwrap per owner or decoy. Returns one
    ``decrypt_field`` place per decoy (``{"blob", "table", "column", "row_id", "owner_id"}``, the
    decoy's key cached like the others), for :func:`open_decoys` to decrypt as the caller decrypts
    its real candidates."""
    ids = list(dict.fromkeys(owner_ids))
    ring = keyring()
    pad = max(0, at_least - len(ids))
    rows = keystore.find_many_by_owner(ids + [str(uuid.uuid4()) for _ in range(pad)])
    for row in rows:
        try:
            _cache_put(row.id, _unwrap_row(row.id, row.owner_id, row.wrapped), row.owner_id)
        except (DecryptError, KeyError_):
            pass  # the read of that candidate raises and logs it
    places = []
    for _ in range(pad):
        owner_id, dek_id, wrapped, blob, row_id = _decoy(ring)
        _cache_put(dek_id, unwrap_dek(ring, wrapped, dek_id, owner_id), owner_id)
        places.append({"blob": blob, "row_id": row_id, "owner_id": owner_id, **_DECOY_PLACE})
    return places


def open_decoys(places: list[dict]) -> None:
    """Decrypt the decoys :func:`prefetch_keys_evenly` returned, through :func:`decrypt_field` like a
    real candidate's field; the plaintext is thrown away."""
    for place in places:
        decrypt_field(place["blob"], table=place["table"], column=place["column"], row_id=place["row_id"],
                      owner_id=place["owner_id"])


# --- fields --------------------------------------------------------------------------------------

def encrypt_field(plaintext: bytes, *, table: str, column: str, row_id: str, owner_id: str,
                  nonce: bytes | None = None) -> bytes:
    """Encrypt one field value under the owner's DEK (created if needed). ``nonce`` for tests only."""
    dek_id, dek = dek_for_owner(owner_id)
    return seal_field(dek, dek_id, plaintext, field_aad(table, column, row_id, owner_id), nonce=nonce)


def decrypt_field(blob: bytes, *, table: str, column: str, row_id: str, owner_id: str) -> bytes:
    """Decrypt a field ciphertext. Raises :class:`DecryptError` (or :class:`KeyErased`) naming the
    place and data key, or :class:`KeyError_` naming a missing KEK; each is written to the access
    log as ``security.decrypt_failed``."""
    place = f"{table}.{column} of {row_id}"
    dek_id = "?"
    try:
        dek_id = blob_dek_id(blob)
        dek = _dek_by_id(dek_id, owner_id)
        return open_field(dek, blob, field_aad(table, column, row_id, owner_id))
    except KeyErased as exc:
        _security_event(owner_id, f"{place}: {exc}")
        raise KeyErased(f"{place}: {exc}") from None
    except DecryptError as exc:
        _security_event(owner_id, f"{place}, data key {dek_id}: {exc}")
        raise DecryptError(f"{place} does not decrypt under data key {dek_id}: {exc} "
                           "(moved to another row, column or owner, or tampered with)") from None
    except KeyError_ as exc:
        _security_event(owner_id, f"{place}: {exc}")
        raise


def reseal_field(blob: bytes, *, table: str, column: str, row_id: str, from_owner: str, to_owner: str) -> bytes:
    """``blob``, a field ciphertext of ``from_owner``'s data key at ``table.column`` of ``row_id``,
    re-encrypted under ``to_owner``'s data key (created if needed) for the same place; the
    plaintext never leaves this function. For data migrations that move ciphertext to another
    owner's key (migration 0027: transcripts from the citizen's key to the call's own).

    Raises :class:`KeyErased` when ``from_owner``'s key is gone (the data were crypto-shredded) or
    ``to_owner`` was erased, :class:`DecryptError` when ``blob`` does not authenticate at its place,
    :class:`KeyError_` naming a missing KEK. Unlike :func:`decrypt_field` a failure is **not** written
    to the access log here: the caller (a migration whose transaction holds SQLite's write lock)
    leaves the row as it is, where the next read reports it."""
    dek = _dek_by_id(blob_dek_id(blob), from_owner)
    plain = open_field(dek, blob, field_aad(table, column, row_id, from_owner))
    new_id, new_dek = dek_for_owner(to_owner)
    return seal_field(new_dek, new_id, plain, field_aad(table, column, row_id, to_owner))


# --- recordings ----------------------------------------------------------------------------------

def encrypt_stream(src: BinaryIO, dst: BinaryIO, *, file_key: str, owner_id: str, chunk_size: int = CHUNK_SIZE,
                   nonces: Iterable[bytes] | None = None) -> int:
    """Encrypt ``src`` into ``dst`` in chunks under the owner's DEK. Returns plaintext bytes written."""
    dek_id, dek = dek_for_owner(owner_id)
    return seal_stream(src, dst, dek_id=dek_id, dek=dek, file_key=file_key, chunk_size=chunk_size, nonces=nonces)


def decrypt_stream(src: BinaryIO, *, file_key: str, owner_id: str) -> Iterator[bytes]:
    """Yield plaintext chunks of a file made by :func:`encrypt_stream`; raises :class:`DecryptError`
    on a truncated, reordered or tampered file (logged as ``security.decrypt_failed``)."""
    try:
        dek_id, chunk_size = _stream_header(src, file_key)
        dek = _dek_by_id(dek_id, owner_id)
        yield from open_stream(src, dek=dek, file_key=file_key, chunk_size=chunk_size)
    except (DecryptError, KeyError_) as exc:
        _security_event(owner_id, f"recording {file_key}: {exc}")
        raise


class RecordingReader(io.RawIOBase):
    """A read-only, seekable plaintext view of an encrypted recording (:func:`open_recording`):
    only the chunk under the read position is decrypted, in memory, and each is authenticated with
    its index and last-chunk flag. No plaintext is written anywhere, so a process killed while
    reading leaves nothing behind. Raises :class:`DecryptError` (logged) on a damaged file."""

    def __init__(self, src: BinaryIO, *, file_key: str, owner_id: str):
        super().__init__()
        self._src, self._file_key, self._owner_id = src, file_key, owner_id
        try:
            src.seek(0)
            dek_id, self._chunk_size = _stream_header(src, file_key)
            self._aead = AESGCM(_dek_by_id(dek_id, owner_id))
            stored = src.seek(0, os.SEEK_END) - 25
            block = 12 + self._chunk_size + 16
            self._n_chunks = max(1, -(-stored // block))
            self._size = stored - 28 * self._n_chunks
            if self._size < 0 or (self._n_chunks > 1 and self._size <= (self._n_chunks - 1) * self._chunk_size):
                raise DecryptError(f"recording {file_key}: truncated")
        except (DecryptError, KeyError_) as exc:
            _security_event(owner_id, f"recording {file_key}: {exc}")
            raise
        self._pos = 0
        self._cached: tuple[int, bytes] | None = None

    @property
    def size(self) -> int:
        """Plaintext length in bytes."""
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def _chunk(self, index: int) -> bytes:
        if self._cached is not None and self._cached[0] == index:
            return self._cached[1]
        block_len = 12 + self._chunk_size + 16
        self._src.seek(25 + index * block_len)
        block = self._src.read(block_len)
        try:
            if len(block) < 28:
                raise DecryptError(f"recording {self._file_key}: truncated at chunk {index}")
            try:
                plain = self._aead.decrypt(block[:12], block[12:],
                                           _chunk_aad(self._file_key, index, index == self._n_chunks - 1))
            except InvalidTag:
                raise DecryptError(f"recording {self._file_key}: chunk {index} fails authentication") from None
        except DecryptError as exc:
            _security_event(self._owner_id, str(exc))
            raise
        self._cached = (index, plain)
        return plain

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or not len(view):
            return 0
        index, offset = divmod(self._pos, self._chunk_size)
        piece = self._chunk(index)[offset:offset + len(view)]
        view[:len(piece)] = piece
        self._pos += len(piece)
        return len(piece)

    def close(self) -> None:
        self._cached = None
        super().close()


def open_recording(src: BinaryIO, *, file_key: str, owner_id: str) -> BinaryIO:
    """A buffered, seekable plaintext reader of the encrypted recording ``src`` (a file opened
    ``rb``; the caller closes it after the reader). Decrypts chunk by chunk in memory (see
    :class:`RecordingReader`): what a decoder reads never touches the disk."""
    return io.BufferedReader(RecordingReader(src, file_key=file_key, owner_id=owner_id), buffer_size=CHUNK_SIZE)


# --- security events -------------------------------------------------------------------------------

_SEC_PENDING = "crm_security_events"


def _security_event(owner_id: str, detail: str) -> None:
    """Record ``security.decrypt_failed`` (ids and key ids only, never values) in the access log.

    The entry must survive the failure of the surrounding request, so it is written by a separate
    session: at once if ``db.session`` holds no transaction, else right after that transaction ends
    (committed or rolled back; on SQLite the open transaction holds the write lock, so writing
    before its end would wait on ourselves)."""
    if not has_app_context():
        log.error("decrypt failed outside an application context: %s", detail)
        return
    # the client's address the same trusted way as every other entry (never X-Forwarded-For itself)
    ip, ua = audit.request_origin()
    entry = {"owner_id": owner_id, "detail": detail[:1000], "actor": audit.current_actor(), "ip": ip, "ua": ua}
    log.warning("security.decrypt_failed: %s", entry["detail"])
    try:
        session = db.session()
        in_tx = session.in_transaction()
    except Exception:  # noqa: BLE001
        session, in_tx = None, False
    if in_tx:
        session.info.setdefault(_SEC_PENDING, []).append(entry)
    else:
        _write_security_events([entry])


def _write_security_events(entries: list[dict]) -> None:
    try:
        with Session(bind=db.engine) as s:
            for e in entries:
                owner = e["owner_id"]
                is_citizen = registry.is_subject(owner, session=s)
                audit.record("security.decrypt_failed", citizen_id=owner if is_citizen else None,
                             outcome="failed", detail=e["detail"] if is_citizen else f"owner {owner}: {e['detail']}",
                             actor=e["actor"], session=s)
                pending = s.info.get(audit._PENDING)
                if pending:
                    pending[-1].update(ip=e["ip"], user_agent=e["ua"])
            s.commit()
    except Exception:  # noqa: BLE001 — never mask the original error; say loudly that logging failed
        log.exception("could not write security.decrypt_failed to the access log")


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction) -> None:
    if transaction.parent is not None:
        return
    pending = session.info.pop(_SEC_PENDING, None)
    if pending and has_app_context():
        _write_security_events(pending)


__all__ = ["DecryptError", "KeyErased", "KeyError_", "encrypt_field", "decrypt_field",
           "encrypt_stream", "decrypt_stream", "open_recording", "prefetch_keys_evenly", "open_decoys", "RecordingReader", "dek_for_owner", "forget_cached_key", "clear_caches", "keyring",
           "wrap_dek", "unwrap_dek", "seal_field", "open_field", "seal_stream", "open_stream",
           "prefetch_keys", "reset_keyring", "reserve_owner_id", "reseal_field"]


def decrypt_range(src: BinaryIO, *, file_key: str, owner_id: str, size: int, start: int, end: int) -> bytes:
    """Plaintext bytes ``[start, end)`` of a recording of ``size`` plaintext bytes, decrypting only
    the chunks the range touches (an audio player's HTTP Range requests). Each chunk is still
    authenticated with its index and last-chunk flag; raises :class:`DecryptError`."""
    try:
        dek_id, chunk_size = _stream_header(src, file_key)
        dek = _dek_by_id(dek_id, owner_id)
        aead = AESGCM(dek)
        n_chunks = max(1, -(-size // chunk_size))
        start, end = max(0, start), min(end, size)
        if start >= end:
            return b""
        block_len = 12 + chunk_size + 16
        out = []
        for index in range(start // chunk_size, (end - 1) // chunk_size + 1):
            src.seek(25 + index * block_len)
            block = src.read(block_len)
            if len(block) < 28:
                raise DecryptError(f"recording {file_key}: truncated at chunk {index}")
            try:
                plain = aead.decrypt(block[:12], block[12:], _chunk_aad(file_key, index, index == n_chunks - 1))
            except InvalidTag:
                raise DecryptError(f"recording {file_key}: chunk {index} fails authentication") from None
            lo = max(start - index * chunk_size, 0)
            hi = min(end - index * chunk_size, len(plain))
            out.append(plain[lo:hi])
        return b"".join(out)
    except (DecryptError, KeyError_) as exc:
        _security_event(owner_id, f"recording {file_key}: {exc}")
        raise
