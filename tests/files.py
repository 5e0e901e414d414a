"""Reading files that this process's SQLite connections may hold open (the test database, its -wal
and -shm, the key store), for the tests that search the instance folder for plaintext.

SQLite's locks are POSIX ``fcntl`` locks, and those belong to the process, not to a descriptor:
closing *any* descriptor of a file drops every lock the process holds on it. SQLite avoids that
among its own connections, but ``Path.read_bytes()`` or ``open()`` in this process does not: it
silently drops the SHARED lock that tells other processes the database is in use. The next process
that closes its last connection then believes it is the only user, checkpoints and deletes the -wal
and -shm files under this process's open connections, which from then on read a stale snapshot
(a test saw none of the rows four writer processes had just committed) and fail with «disk I/O
error». So such files are read by another process here.
"""
from __future__ import annotations

import subprocess
from pathlib import Path


def read_from_another_process(path: str | Path) -> bytes:
    """The bytes of ``path``, read by another process so that no descriptor of it is opened and
    closed in this one. Raises OSError when the file cannot be read (e.g. it vanished meanwhile)."""
    out = subprocess.run(["cat", "--", str(path)], capture_output=True)
    if out.returncode != 0:
        raise OSError(f"cannot read {path}: {out.stderr.decode(errors='replace').strip()}")
    return out.stdout
