"""Temporary files for uploads whose bytes on disk are ciphertext: no plaintext recording on disk.

An uploaded recording is personal data (the voice, and what was said). Werkzeug spools an upload
larger than 500 KB to a temporary file in ``tempfile.gettempdir()`` while it parses the request
(``SpooledTemporaryFile``), and the upload is then staged for validation before it is encrypted into
storage; both copies would hold the plaintext on disk (unnamed files, but their blocks stay on the
device after a crash, and ``/proc/<pid>/fd`` opens them while the process lives).

:class:`EncryptedSpool` is a seekable read/write file object for both: what is written is encrypted
with AES-256-CTR under a random key and counter that exist only in this object's memory, into an
unnamed temporary file (``tempfile.TemporaryFile``: ``O_TMPFILE`` on Linux); reads decrypt. When the
object is closed or the process dies, however it dies, the key is gone and what is left on the
device is noise (crypto-shredding, as for the citizens' data keys). Memory use stays at one chunk,
however large the upload (up to ``MAX_CONTENT_LENGTH``).

Writes only append (the parser and the staging copy write front to back), so no counter value is
ever used for two plaintexts. CTR gives confidentiality only: the file is private to the process
(unnamed, mode 0600) for the seconds of one request, and what is stored for good is sealed with
AES-GCM by :func:`crm.security.crypto.encrypt_stream`.

:class:`SpoolingRequest` is the app's request class (``app.request_class``): its
``_get_file_stream`` — Werkzeug's stream factory for file parts of a multipart body — returns an
:class:`EncryptedSpool`.
"""
from __future__ import annotations

import io
import os
import tempfile

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from flask import Request

BLOCK = 16  # AES block size: one counter value per 16 bytes


class EncryptedSpool(io.RawIOBase):
    """A seekable temporary file (read, append-only write) kept encrypted on disk under a key held
    only in memory. ``dir``: where the unnamed file is made (default ``tempfile.gettempdir()``).
    ``fileno()`` is not offered, so nothing can read or write the ciphertext around the cipher."""

    def __init__(self, dir: str | os.PathLike | None = None):
        super().__init__()
        self._file = tempfile.TemporaryFile(dir=dir)
        self._key = os.urandom(32)
        self._counter0 = int.from_bytes(os.urandom(16), "big")
        self._size = 0
        self._pos = 0

    def _xor(self, data: bytes | memoryview, offset: int) -> bytes:
        """``data`` en- or decrypted as it sits at byte ``offset`` of the file (CTR is symmetric)."""
        block, skip = divmod(offset, BLOCK)
        counter = ((self._counter0 + block) % (1 << 128)).to_bytes(16, "big")
        ctx = Cipher(algorithms.AES(self._key), modes.CTR(counter)).encryptor()
        if skip:
            ctx.update(bytes(skip))
        return ctx.update(bytes(data)) + ctx.finalize()

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._checkClosed()
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._checkClosed()
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer) -> int:
        self._checkClosed()
        view = memoryview(buffer).cast("B")
        n = min(len(view), max(0, self._size - self._pos))
        if n == 0:
            return 0
        self._file.seek(self._pos)
        data = self._file.read(n)
        view[:len(data)] = self._xor(data, self._pos)
        self._pos += len(data)
        return len(data)

    def write(self, data) -> int:
        """Append ``data`` (bytes-like) encrypted. Raises ``io.UnsupportedOperation`` for a write
        anywhere but at the end (it would reuse counter values)."""
        self._checkClosed()
        if self._pos != self._size:
            raise io.UnsupportedOperation("EncryptedSpool only appends")
        data = memoryview(data).cast("B")
        if not len(data):
            return 0
        self._file.seek(self._size)
        self._file.write(self._xor(data, self._size))
        self._size += len(data)
        self._pos = self._size
        return len(data)

    def fileno(self) -> int:
        raise io.UnsupportedOperation("the spool's file holds ciphertext: read through the object")

    def close(self) -> None:
        if not self.closed:
            self._key = b""
            self._file.close()
        super().close()


class SpoolingRequest(Request):
    """Flask's request with uploaded files spooled through :class:`EncryptedSpool` instead of
    Werkzeug's ``SpooledTemporaryFile`` (plaintext in ``tempfile.gettempdir()`` past 500 KB). The
    body's size is still bounded by ``MAX_CONTENT_LENGTH`` (a larger one is answered 413 before or
    while it is read; the partly written spool is closed with the request, leaving nothing)."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BufferedRandom(EncryptedSpool(), buffer_size=64 * 1024)
