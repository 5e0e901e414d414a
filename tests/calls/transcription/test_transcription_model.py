"""Whisper model installation from the PyPI packages and loading once per process
(crm.calls.transcription.model)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from crm.calls.transcription import model as wm
from crm.calls.transcription import transcribe
from tests.speech import BAD


def test_package_data_layout():
    files = wm.find_package_data()
    names = [p.name for p in files]
    assert names == ["model.bin.part1", "model.bin.part2", "config.json", "tokenizer.json",
                     "vocabulary.txt"]
    assert sum(p.stat().st_size for p in files[:2]) == wm.MODEL_SIZE


def test_ensure_model_joins_verifies_and_is_idempotent(tmp_path):
    d = wm.ensure_model(tmp_path)
    assert d == tmp_path / "whisper-base"
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        assert (d / name).is_file()
    assert (d / "model.bin").stat().st_size == wm.MODEL_SIZE
    assert wm.is_valid_model_dir(d, full_check=True)
    mtime = (d / "model.bin").stat().st_mtime_ns
    t0 = time.perf_counter()
    assert wm.ensure_model(tmp_path) == d  # no-op
    assert time.perf_counter() - t0 < 1.0
    assert (d / "model.bin").stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == ["whisper-base"]  # no temp leftovers


def test_ensure_model_checksum_mismatch(tmp_path, monkeypatch):
    monkeypatch.setattr(wm, "MODEL_SHA256", "0" * 64)
    with pytest.raises(wm.ModelError, match="checksum"):
        wm.ensure_model(tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing half-written is left behind


def test_ensure_model_crash_mid_join_leaves_no_half_model(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(wm.shutil, "copyfile", boom)
    with pytest.raises(OSError):
        wm.ensure_model(tmp_path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    assert wm.is_valid_model_dir(wm.ensure_model(tmp_path))


def test_ensure_model_replaces_a_corrupt_copy(tmp_path):
    d = tmp_path / "whisper-base"
    d.mkdir()
    (d / "model.bin").write_bytes(b"garbage")
    assert wm.ensure_model(tmp_path) == d
    assert wm.is_valid_model_dir(d, full_check=True)


@pytest.mark.model
def test_load_model_cached_per_process(model, model_dir):
    assert wm.load_model(model_dir, 2) is model
    assert wm.load_model(str(model_dir), 2) is model
    assert wm.load_model(model_dir, 1) is not model


@pytest.mark.model
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_loads_its_own_model_and_does_not_hang(model, model_dir):
    """CTranslate2 is not fork-safe: a child must not reuse the parent's model (pitfalls.md)."""
    parent_id = id(model)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            os.close(r)
            m = wm.load_model(model_dir, 1)
            res = transcribe(BAD / "t06_ulaw8k.wav", model_dir=model_dir, cpu_threads=1)
            os.write(w, json.dumps({"same": id(m) == parent_id,
                                    "segments": len(res.segments)}).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("transcription in a forked child hung")
    out = json.loads(os.read(r, 4096).decode() or "{}")
    os.close(r)
    assert os.waitstatus_to_exitcode(status) == 0
    assert out["same"] is False
    assert out["segments"] >= 1


def test_forked_child_cache_is_reset(model_dir, monkeypatch):
    """The cache remembers the loading pid; a different pid never gets the cached object."""
    sentinel = object()
    monkeypatch.setattr(wm, "_cache", {(str(Path(model_dir).resolve()), 2): sentinel})
    monkeypatch.setattr(wm, "_cache_pid", os.getpid() + 1)  # "loaded by the parent"
    monkeypatch.setattr(wm, "_inherited", [])
    loaded = []

    class FakeModel:
        def __init__(self, *a, **k):
            loaded.append(k)

    import faster_whisper

    monkeypatch.setattr(faster_whisper, "WhisperModel", FakeModel)
    m = wm.load_model(model_dir, 2)
    assert m is not sentinel and isinstance(m, FakeModel)
    assert loaded[0]["compute_type"] == "int8" and loaded[0]["device"] == "cpu"
    assert wm._inherited == [sentinel]  # kept alive, never used or destroyed in the child
