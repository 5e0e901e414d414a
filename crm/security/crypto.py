"""Envelope encryption: per-owner data keys (DEKs) wrapped by the keyring's KEK, AES-256-GCM.

Field ciphertext, format version 1 (bytes)::

    0x01 | dek_id (16 bytes, UUID) | nonce (12) | ciphertext + tag (16)

The associated data is ``b"crm1|" + table|column|row_id|owner_id`` so a ciphertext copied to
another row, column or citizen fails to decrypt (:class:`DecryptError`).

Wrapped DEK, version 1: ``0x01 | len(kek_id) | kek_id | nonce (12) | AESGCM(kek)(dek, aad=dek_id|owner)``.

Recording files (:func:`encrypt_stream`): a header ``b"CRMR" 0x01 | dek_id (16) | chunk_size (4, BE)``
then chunks of ``nonce | ct+tag``; each chunk's associated data names the file key, the chunk index
and a last-chunk flag, so a truncated, extended or reordered file fails to decrypt.
"""
from __future__ import annotations

import os
import struct
import uuid
from collections import OrderedDict
from typing import BinaryIO, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app

from crm.db import db
from crm.security.keyring import Keyring, KeyError_, load_keyring
from crm.security.models import DataKey

FORMAT_V1 = 1
CHUNK_SIZE = 64 * 1024
_MAGIC = b"CRMR"


class DecryptError(Exception):
    """A ciphertext does not decrypt under its key and associated data (tampered, moved or
    its key erased)."""


class KeyErased(DecryptError):
    """The owner's data key no longer exists: the data was crypto-shredded."""


def keyring() -> Keyring:
    """The application's keyring, loaded once per app."""
    ring = current_app.extensions.get("crm_keyring")
    if ring is None:
        from pathlib import Path

        ring = load_keyring(Path(current_app.config["CRM_KEYS_DIR"]))
        current_app.extensions["crm_keyring"] = ring
    return ring


# --- data keys -----------------------------------------------------------------------------------

_DEK_CACHE: "OrderedDict[str, bytes]" = OrderedDict()
_DEK_CACHE_MAX = 4096


def _dek_aad(dek_id: str, owner_id: str) -> bytes:
    return f"dek1|{dek_id}|{owner_id}".encode()


def wrap_dek(ring: Keyring, dek: bytes, dek_id: str, owner_id: str, kek_id: str | None = None) -> tuple[str, bytes]:
    """Wrap ``dek`` with the active (or named) KEK. Returns ``(kek_id, wrapped bytes)``."""
    kid = kek_id or ring.active_id
    nonce = os.urandom(12)
    ct = AESGCM(ring.kek(kid)).encrypt(nonce, dek, _dek_aad(dek_id, owner_id))
    kb = kid.encode()
    return kid, bytes([FORMAT_V1, len(kb)]) + kb + nonce + ct


def unwrap_dek(ring: Keyring, wrapped: bytes, dek_id: str, owner_id: str) -> bytes:
    """Unwrap a DEK; raises :class:`KeyError_` naming a missing KEK, :class:`DecryptError` on tamper."""
    if not wrapped or wrapped[0] != FORMAT_V1:
        raise DecryptError(f"data key {dek_id}: unknown wrap format")
    n = wrapped[1]
    kid = wrapped[2:2 + n].decode()
    nonce = wrapped[2 + n:14 + n]
    try:
        return AESGCM(ring.kek(kid)).decrypt(nonce, wrapped[14 + n:], _dek_aad(dek_id, owner_id))
    except InvalidTag:
        raise DecryptError(f"data key {dek_id} does not unwrap under key-encryption key {kid!r}") from None


def _cache_put(dek_id: str, dek: bytes) -> None:
    _DEK_CACHE[dek_id] = dek
    _DEK_CACHE.move_to_end(dek_id)
    while len(_DEK_CACHE) > _DEK_CACHE_MAX:
        _DEK_CACHE.popitem(last=False)


def forget_cached_key(dek_id: str) -> None:
    """Drop a DEK from this process's cache (after shredding)."""
    _DEK_CACHE.pop(dek_id, None)


def dek_for_owner(owner_id: str, create: bool = True) -> tuple[str, bytes]:
    """The owner's ``(dek_id, dek)``; creates and wraps a new DEK in the current session if absent.

    Raises :class:`KeyErased` when the owner has none and ``create`` is False."""
    session = db.session
    row = None
    for obj in session.new:
        if isinstance(obj, DataKey) and obj.owner_id == owner_id:
            row = obj
            break
    if row is None:
        with session.no_autoflush:
            row = session.execute(db.select(DataKey).where(DataKey.owner_id == owner_id)).scalar_one_or_none()
    if row is None:
        if not create:
            raise KeyErased(f"no data key for {owner_id}: erased or never created")
        dek = AESGCM.generate_key(256)
        dek_id = str(uuid.uuid4())
        kid, wrapped = wrap_dek(keyring(), dek, dek_id, owner_id)
        row = DataKey(id=dek_id, owner_id=owner_id, kek_id=kid, wrapped=wrapped)
        session.add(row)
        _cache_put(dek_id, dek)
        return dek_id, dek
    dek = _DEK_CACHE.get(row.id)
    if dek is None:
        dek = unwrap_dek(keyring(), row.wrapped, row.id, owner_id)
        _cache_put(row.id, dek)
    return row.id, dek


def _dek_by_id(dek_id: str, owner_id: str) -> bytes:
    dek = _DEK_CACHE.get(dek_id)
    if dek is not None:
        return dek
    row = db.session.get(DataKey, dek_id)
    if row is None:
        raise KeyErased(f"data key {dek_id} of {owner_id} was erased")
    if row.owner_id != owner_id:
        raise DecryptError(f"data key {dek_id} belongs to another owner")
    dek = unwrap_dek(keyring(), row.wrapped, row.id, owner_id)
    _cache_put(dek_id, dek)
    return dek


# --- fields --------------------------------------------------------------------------------------

def field_aad(table: str, column: str, row_id: str, owner_id: str) -> bytes:
    """Associated data binding a field ciphertext to its place."""
    return f"crm1|{table}|{column}|{row_id}|{owner_id}".encode()


def encrypt_field(plaintext: bytes, *, table: str, column: str, row_id: str, owner_id: str) -> bytes:
    """Encrypt one field value under the owner's DEK (created if needed)."""
    dek_id, dek = dek_for_owner(owner_id)
    nonce = os.urandom(12)
    ct = AESGCM(dek).encrypt(nonce, plaintext, field_aad(table, column, row_id, owner_id))
    return bytes([FORMAT_V1]) + uuid.UUID(dek_id).bytes + nonce + ct


def decrypt_field(blob: bytes, *, table: str, column: str, row_id: str, owner_id: str) -> bytes:
    """Decrypt a field ciphertext. Raises :class:`DecryptError` (or :class:`KeyErased`)."""
    if not blob or blob[0] != FORMAT_V1 or len(blob) < 1 + 16 + 12 + 16:
        raise DecryptError(f"{table}.{column} of {row_id}: not a version-1 ciphertext")
    dek_id = str(uuid.UUID(bytes=blob[1:17]))
    dek = _dek_by_id(dek_id, owner_id)
    try:
        return AESGCM(dek).decrypt(blob[17:29], blob[29:], field_aad(table, column, row_id, owner_id))
    except InvalidTag:
        raise DecryptError(f"{table}.{column} of {row_id} does not decrypt in this place") from None


# --- recordings ----------------------------------------------------------------------------------

def _chunk_aad(file_key: str, index: int, last: bool) -> bytes:
    return f"crmr1|{file_key}|{index}|{int(last)}".encode()


def encrypt_stream(src: BinaryIO, dst: BinaryIO, *, file_key: str, owner_id: str, chunk_size: int = CHUNK_SIZE) -> int:
    """Encrypt ``src`` into ``dst`` in chunks. Returns plaintext bytes written."""
    dek_id, dek = dek_for_owner(owner_id)
    aead = AESGCM(dek)
    dst.write(_MAGIC + bytes([FORMAT_V1]) + uuid.UUID(dek_id).bytes + struct.pack(">I", chunk_size))
    total, index = 0, 0
    chunk = src.read(chunk_size)
    while True:
        nxt = src.read(chunk_size) if chunk else b""
        last = not nxt
        nonce = os.urandom(12)
        dst.write(nonce + aead.encrypt(nonce, chunk, _chunk_aad(file_key, index, last)))
        total += len(chunk)
        index += 1
        if last:
            return total
        chunk = nxt


def decrypt_stream(src: BinaryIO, *, file_key: str, owner_id: str) -> Iterator[bytes]:
    """Yield plaintext chunks of a file made by :func:`encrypt_stream`; raises :class:`DecryptError`
    on a truncated, reordered or tampered file."""
    header = src.read(4 + 1 + 16 + 4)
    if len(header) != 25 or header[:4] != _MAGIC or header[4] != FORMAT_V1:
        raise DecryptError(f"recording {file_key}: not an encrypted recording")
    dek = _dek_by_id(str(uuid.UUID(bytes=header[5:21])), owner_id)
    (chunk_size,) = struct.unpack(">I", header[21:25])
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


__all__ = ["DecryptError", "KeyErased", "KeyError_", "encrypt_field", "decrypt_field",
           "encrypt_stream", "decrypt_stream", "dek_for_owner", "forget_cached_key", "keyring",
           "wrap_dek", "unwrap_dek"]
