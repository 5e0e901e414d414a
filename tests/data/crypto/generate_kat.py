"""Generate ``kat_v1.json``: known-answer vectors for ciphertext format version 1.

Built here directly from the documented byte layouts with ``cryptography``'s AES-GCM, HKDF and
Python's hmac — not with ``crm.security`` — so the test that replays them through the application's
functions is an independent check. Re-run only when adding a vector; changing an existing one means
the format changed (bump the version instead):

    .venv/bin/python tests/data/crypto/generate_kat.py
"""
from __future__ import annotations

import hashlib
import hmac
import json
import struct
import uuid
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def fixed(label: str, n: int) -> bytes:
    """Deterministic test bytes: SHA-256 of a label, repeated as needed."""
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{label}|{i}".encode()).digest()
        i += 1
    return out[:n]


def field_vector(name, dek, dek_id, nonce, table, column, row_id, owner_id, plaintext: bytes):
    aad = f"crm1|{table}|{column}|{row_id}|{owner_id}".encode()
    ct = bytes([1]) + uuid.UUID(dek_id).bytes + nonce + AESGCM(dek).encrypt(nonce, plaintext, aad)
    return {"name": name, "dek": dek.hex(), "dek_id": dek_id, "nonce": nonce.hex(), "table": table,
            "column": column, "row_id": row_id, "owner_id": owner_id, "plaintext": plaintext.hex(),
            "plaintext_utf8": plaintext.decode("utf-8", "replace"), "aad": aad.hex(), "ciphertext": ct.hex()}


def wrap_vector(name, kek_id, kek, dek, dek_id, owner_id, nonce):
    aad = f"dek1|{dek_id}|{owner_id}".encode()
    kb = kek_id.encode()
    wrapped = bytes([1, len(kb)]) + kb + nonce + AESGCM(kek).encrypt(nonce, dek, aad)
    return {"name": name, "kek_id": kek_id, "kek": kek.hex(), "dek": dek.hex(), "dek_id": dek_id,
            "owner_id": owner_id, "nonce": nonce.hex(), "aad": aad.hex(), "wrapped": wrapped.hex()}


def stream_vector(name, dek, dek_id, file_key, chunk_size, plaintext: bytes, store_full: bool):
    aead = AESGCM(dek)
    out = b"CRMR" + bytes([1]) + uuid.UUID(dek_id).bytes + struct.pack(">I", chunk_size)
    chunks = [plaintext[i:i + chunk_size] for i in range(0, len(plaintext), chunk_size)] or [b""]
    nonces = [fixed(f"{name}-nonce-{i}", 12) for i in range(len(chunks))]
    for i, (chunk, nonce) in enumerate(zip(chunks, nonces)):
        last = i == len(chunks) - 1
        out += nonce + aead.encrypt(nonce, chunk, f"crmr1|{file_key}|{i}|{int(last)}".encode())
    v = {"name": name, "dek": dek.hex(), "dek_id": dek_id, "file_key": file_key, "chunk_size": chunk_size,
         "nonces": [n.hex() for n in nonces], "plaintext_sha256": hashlib.sha256(plaintext).hexdigest(),
         "plaintext_len": len(plaintext), "output_sha256": hashlib.sha256(out).hexdigest(), "output_len": len(out)}
    if store_full:
        v["plaintext"] = plaintext.hex()
        v["output"] = out.hex()
    else:
        v["plaintext_rule"] = "bytes(range(256)) repeated, cut to plaintext_len"
    return v


def bidx_vector(name, root, index, normalised, bits):
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"bidx|" + index.encode()).derive(root)
    mac = hmac.new(key, normalised.encode(), hashlib.sha256).digest()
    value = format(int.from_bytes(mac[:8], "big") >> (64 - bits), "x")
    return {"name": name, "root": root.hex(), "index": index, "normalised": normalised, "bits": bits,
            "derived_key": key.hex(), "value": value}


def main() -> None:
    dek = fixed("dek", 32)
    kek = fixed("kek-k1", 32)
    dek_id = "6f1c2a7e-3b4d-4c5e-9f60-718293a4b5c6"
    citizen = "0b7e8f2a-1c3d-4e5f-8a9b-0c1d2e3f4a5b"
    appeal = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
    seg = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
    long_plain = (bytes(range(256)) * 300)[:64 * 1024 + 10]
    doc = {
        "format_version": 1,
        "description": "Known-answer vectors, format version 1 (see crm/security/crypto.py). Hex strings; "
                       "field ciphertext = 01 | dek_id(16) | nonce(12) | AES-256-GCM(ct|tag), "
                       "aad = 'crm1|table|column|row_id|owner_id'; wrapped DEK = 01 | len(kek_id) | kek_id | "
                       "nonce | AES-256-GCM(kek)(dek, aad='dek1|dek_id|owner_id'); recording = 'CRMR' 01 | "
                       "dek_id | chunk_size(u32 BE) then per chunk nonce | ct|tag with aad "
                       "'crmr1|file_key|index|last'; blind index = first `bits` bits of "
                       "HMAC-SHA256(HKDF-SHA256(root, info='bidx|'+index), normalised) as hex.",
        "field": [
            field_vector("citizen full name", dek, dek_id, fixed("n1", 12), "citizens", "full_name", citizen, citizen,
                         "Петров Иван Сергеевич".encode()),
            field_vector("citizen phone", dek, dek_id, fixed("n2", 12), "citizens", "phone", citizen, citizen,
                         b"+79123456789"),
            field_vector("appeal description", dek, dek_id, fixed("n3", 12), "appeals", "description", appeal, citizen,
                         "С утра нет горячей воды во всём подъезде.".encode()),
            field_vector("segment words (json)", dek, dek_id, fixed("n4", 12), "segments", "words", seg, citizen,
                         json.dumps([{"w": "алло", "s": 0.0, "e": 0.4}], ensure_ascii=False).encode()),
        ],
        "wrapped_dek": [
            wrap_vector("DEK under k1", "k1", kek, dek, dek_id, citizen, fixed("w1", 12)),
            wrap_vector("DEK under k2", "k2", fixed("kek-k2", 32), dek, dek_id, citizen, fixed("w2", 12)),
        ],
        "recording": [
            stream_vector("three small chunks", dek, dek_id, "0f1e2d3c4b5a69788796a5b4c3d2e1f0", 64,
                          bytes(range(150)), True),
            stream_vector("exact multiple", dek, dek_id, "k-exact", 64, bytes(range(128)), True),
            stream_vector("empty recording", dek, dek_id, "k-empty", 64, b"", True),
            stream_vector("64 KiB chunks", dek, dek_id, "k-64k", 64 * 1024, long_plain, False),
        ],
        "blind_index": [
            bidx_vector("phone", fixed("index-root", 32), "phone", "+79123456789", 16),
            bidx_vector("surname", fixed("index-root", 32), "surname", "петров", 17),
            bidx_vector("name_building", fixed("index-root", 32), "name_building", "петров|ул  садовая  д  5", 17),
        ],
    }
    path = Path(__file__).with_name("kat_v1.json")
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
