"""The plaintext scans read the instance folder's SQLite files without dropping this process's SQLite
locks (tests/files.py): reading the test database in-process once made another process delete its
-wal and -shm under the suite's open connections, and every multi-process test after that saw a
stale database («disk I/O error» on SQLite, make test's default)."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.files import read_from_another_process


def _other_process_writes(db: Path, value: int) -> None:
    code = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
            "c.execute('PRAGMA journal_mode=WAL'); c.execute('INSERT INTO t VALUES (?)', (int(sys.argv[2]),)); c.close()")
    subprocess.run([sys.executable, "-c", code, str(db), str(value)], check=True)


def _connection_survives(tmp_path: Path, reader) -> bool:
    """Whether a WAL connection of this process still sees the database once ``reader`` has read its
    files and another process has written and closed its last connection."""
    db = tmp_path / "t.sqlite3"
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.execute("INSERT INTO t VALUES (1)")
        for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            reader(p)
        _other_process_writes(db, 2)
        _other_process_writes(db, 3)
        wal_kept = Path(f"{db}-wal").exists() and Path(f"{db}-shm").exists()
        seen = conn.execute("SELECT count(*) FROM t").fetchone()[0]
        return wal_kept and seen == 3
    finally:
        conn.close()


def test_reading_the_files_in_this_process_loses_the_database(tmp_path):
    """The control: an in-process read drops the locks, the other process deletes the WAL on close,
    and this process's connection reads a stale snapshot."""
    assert not _connection_survives(tmp_path, Path.read_bytes)


def test_the_helper_reads_them_and_the_connection_keeps_its_database(tmp_path):
    assert _connection_survives(tmp_path, read_from_another_process)
    assert read_from_another_process(tmp_path / "t.sqlite3").startswith(b"SQLite format 3\x00")


def test_the_helper_fails_loudly_on_a_missing_file(tmp_path):
    with pytest.raises(OSError, match="cannot read"):
        read_from_another_process(tmp_path / "absent")
