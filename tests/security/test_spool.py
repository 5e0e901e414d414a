"""crm.security.spool.EncryptedSpool: a seekable temporary file whose bytes on disk are ciphertext
under a key held only in memory (uploads are never plaintext on disk; tests/calls/test_upload_spool.py
checks the requests)."""
from __future__ import annotations

import io
import os
import random

import pytest

from crm.security.spool import EncryptedSpool


def test_reads_and_seeks_like_the_plaintext_and_stores_only_ciphertext(tmp_path):
    data = random.Random(7).randbytes(1_000_003)
    raw = EncryptedSpool(dir=tmp_path)
    f = io.BufferedRandom(raw, buffer_size=64 * 1024)
    for i in range(0, len(data), 7919):  # written front to back in odd pieces, as a parser does
        f.write(data[i:i + 7919])
    assert f.seek(0, os.SEEK_END) == len(data)
    f.seek(0)
    assert f.read() == data
    for offset in (0, 1, 15, 16, 17, 65_535, 500_001, len(data) - 3):
        f.seek(offset)
        assert f.read(4096) == data[offset:offset + 4096], offset
        assert f.tell() == min(len(data), offset + 4096)
    f.seek(10)
    assert f.readline() == data[10:data.index(b"\n", 10) + 1]
    raw._file.seek(0)
    on_disk = raw._file.read()
    assert len(on_disk) == len(data) and on_disk != data
    assert not any(data[i:i + 64] in on_disk for i in range(0, len(data) - 64, 50_000))
    assert os.listdir(tmp_path) == []  # unnamed
    with pytest.raises(io.UnsupportedOperation):
        raw.fileno()
    f.close()
    assert raw.closed
    other = EncryptedSpool(dir=tmp_path)
    other.write(b"abcdef")
    other.seek(2)
    with pytest.raises(io.UnsupportedOperation):  # only appends: a counter value is never reused
        other.write(b"x")
    other.close()


def test_two_spools_of_the_same_bytes_differ_on_disk(tmp_path):
    data = b"\x00" * 100_000
    a, b = EncryptedSpool(dir=tmp_path), EncryptedSpool(dir=tmp_path)
    for s in (a, b):
        s.write(data)
        s._file.seek(0)
    assert a._file.read() != b._file.read()
    a.seek(0)
    assert a.read() == data
    a.close(), b.close()
