"""No decrypted recording ever rests on disk (issue 13, point 1).

A `crm worker` SIGKILLed in the middle of a transcription leaves no file under the instance
folder that holds the recording's plaintext (earlier versions left the decrypted WAV in
``recordings/incoming/*.work``); an upload is staged in a file without a name; plaintext an earlier
version left behind is deleted by the reconciler (which `crm worker` runs at start) and by every
erasure."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from flask import current_app

from crm import jobs
from crm.calls import services as calls
from crm.consent import rights
from crm.db import db
from tests.files import read_from_another_process
from tests.factories import AppealFactory, CallFactory, CitizenFactory
from tests.calls.test_reconcile import _fresh, _long_speech_wav, _poll, _worker_env
from tests.wavs import pcm_wav


def _files_holding(root: Path, needles: list[bytes]) -> list[str]:
    """Every file under ``root`` (recursively; sockets and other non-regular files skipped) that
    contains one of ``needles``. Each is read by another process: the instance folder holds the test
    database, and reading it here would drop this process's SQLite locks (tests/files.py)."""
    found = []
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if not path.is_file():
                continue
            try:
                data = read_from_another_process(path)
            except OSError:
                continue
            if any(n in data for n in needles):
                found.append(str(path.relative_to(root)))
    return found


def _windows(wav: bytes) -> list[bytes]:
    """Three 4 KiB windows (start, middle, end) of the PCM samples of a WAV file's ``data`` chunk;
    each is checked to be distinctive (not silence, not one repeated byte)."""
    with wave.open(io.BytesIO(wav)) as w:
        pcm = w.readframes(w.getnframes())
    out = []
    for at in (4096, len(pcm) // 2, len(pcm) - 3 * 4096):
        window = pcm[at:at + 4096]
        assert len(window) == 4096 and len(set(window)) > 64, "the planted window is not distinctive"
        out.append(window)
    return out


def _noise_wav(seconds: float, rate: int = 16000) -> bytes:
    """``seconds`` of loud mono noise: every 4 KiB of its samples occurs once in the world."""
    rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))
    return pcm_wav(rng.integers(-12000, 12000, int(seconds * rate), dtype="<i2").tobytes(), rate)


#: Loaded by `crm worker` through PYTHONPATH (test only): the model and its decoder are replaced by
#: stand-ins and the job stops for good once the first window of the recording has been decoded,
#: so the SIGKILL lands while the real decoder is in the middle of the recording. The decoder
#: itself (PyAV on what the job hands it) is not touched.
_HOOK = '''
import os, time
from crm.calls.transcription import pipeline

def _load_model(*args, **kwargs):
    return object()

class _Decoder:
    def __init__(self, *args, **kwargs):
        pass

def _process_buffer(buf, *args, **kwargs):
    open(os.environ["CRM_TEST_DECODING_MARKER"], "w").close()
    time.sleep(3600)

pipeline.load_model = _load_model
pipeline.Decoder = _Decoder
pipeline._process_buffer = _process_buffer
'''


#: This checkout, first on the worker's PYTHONPATH: the worker runs the code under test even when
#: the virtualenv's `crm` was installed from another checkout.
ROOT = Path(__file__).resolve().parents[2]


def _kill_worker_mid_job(ctx, tmp_path: Path, call_id: str, *, reached, pythonpath: tuple[Path, ...] = (),
                         env_extra: dict | None = None) -> None:
    """Start `crm worker --burst` (``pythonpath`` and this checkout first on its PYTHONPATH), wait
    until ``reached()`` says the job is under way, SIGKILL the worker, and clean up its queues and
    registration."""
    crm_bin = Path(sys.executable).with_name("crm")
    if not crm_bin.exists():
        pytest.skip(f"{crm_bin} is absent: install the project (make install)")
    db.session.commit()
    log = tmp_path / "worker.log"
    conn = jobs.redis_connection()
    call = _fresh(call_id)
    first_job = call.job_id
    db.session.commit()
    with open(log, "wb") as out:
        env = {**_worker_env(ctx), **(env_extra or {}),
               "PYTHONPATH": os.pathsep.join(str(p) for p in (*pythonpath, ROOT))}
        proc = subprocess.Popen([str(crm_bin), "worker", "--burst"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    worker_name = None
    try:
        assert _poll(call_id, lambda r: r.status == "processing", 120, proc, log), "never processing"
        deadline = time.monotonic() + 120
        while not reached() and time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"the worker exited ({proc.returncode}):\n" + log.read_text()[-3000:])
            time.sleep(0.2)
        assert reached(), "the job never got under way:\n" + log.read_text()[-3000:]
        from rq.job import Job

        worker_name = Job.fetch(first_job, connection=conn).worker_name
        os.kill(proc.pid, signal.SIGKILL)  # `crm worker` is non-forking: this process runs the job
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        assert _fresh(call_id).status == "processing"  # killed mid-job
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        jobs.queue("transcription").empty()
        if worker_name:
            from rq.worker import Worker
            from rq.worker_registration import clean_worker_registry

            conn.delete(Worker.redis_worker_namespace_prefix + worker_name)
            for name in jobs.QUEUES:
                clean_worker_registry(jobs.queue(name))


def test_worker_killed_while_decoding_leaves_no_plaintext_on_disk(ctx, tmp_path):
    """A six-minute recording (two decode windows): the worker is SIGKILLed once the real decoder has
    read the first window (test hook above), then no file under the instance folder holds any
    4 KiB window of its samples."""
    wav = _noise_wav(360)
    needles = _windows(wav)
    call = CallFactory(citizen=CitizenFactory(), audio=wav, transcribed=False)
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent(_HOOK))
    marker = tmp_path / "decoding"
    _kill_worker_mid_job(ctx, tmp_path, call.id, reached=marker.exists, pythonpath=(hook,),
                         env_extra={"CRM_TEST_DECODING_MARKER": str(marker)})
    instance = Path(ctx.instance_path)
    assert Path(ctx.config["CRM_RECORDINGS_DIR"]).is_relative_to(instance)
    assert calls.recording_path(_fresh(call.id)).exists()  # the ciphertext stays, for the re-run
    assert _files_holding(instance, needles) == []


@pytest.mark.model
def test_worker_killed_mid_transcription_leaves_no_plaintext_on_disk(ctx, tmp_path):
    """The same with the real model: `crm worker` SIGKILLed once the transcription has made
    progress on 2.3 minutes of speech."""
    from crm.calls.jobs import model_dir

    model_dir(ctx)  # assemble the model here, so the kill cannot land in the middle of that
    wav = _long_speech_wav(tmp_path / "long.wav").read_bytes()
    needles = _windows(wav)
    call = CallFactory(citizen=CitizenFactory(), audio=wav, transcribed=False)
    call_id = call.id

    def under_way() -> bool:
        progress = db.session.execute(db.select(calls.Call.progress).where(calls.Call.id == call_id)).scalar_one()
        db.session.rollback()
        return progress > 0

    _kill_worker_mid_job(ctx, tmp_path, call_id, reached=under_way)
    assert _files_holding(Path(ctx.instance_path), needles) == []


def test_a_staged_upload_has_no_name_on_disk(ctx):
    """Between its validation and its encryption an upload lives in an unnamed file: a web process
    killed then leaves nothing under the instance folder."""
    wav = _noise_wav(3)
    staged = calls.stage_upload(io.BytesIO(wav), "Звонок.wav")
    try:
        assert _files_holding(Path(ctx.instance_path), _windows(wav)) == []
        assert staged.size_bytes == len(wav) and staged.info.duration_s == pytest.approx(3.0)
    finally:
        staged.discard()
    assert list((Path(ctx.config["CRM_RECORDINGS_DIR"]) / "incoming").iterdir()) == []


def _plant_leftovers() -> list[Path]:
    """Plaintext as an earlier version left it in ``recordings/incoming`` after a crash."""
    incoming = Path(current_app.config["CRM_RECORDINGS_DIR"]) / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    paths = [incoming / "tmpa1b2c3.work", incoming / "tmpd4e5f6.upload"]
    for path in paths:
        path.write_bytes(_noise_wav(1))
    return paths


def test_reconciliation_deletes_plaintext_left_by_an_earlier_version(ctx):
    leftovers = _plant_leftovers()
    keep = leftovers[0].with_name("notes.txt")
    keep.write_text("not ours to delete")
    assert calls.reconcile() == {"requeued": 0, "failed": 0}
    assert [p for p in leftovers if p.exists()] == []
    assert keep.exists()
    keep.unlink()


def test_erasure_deletes_plaintext_left_by_an_earlier_version(ctx, make_user, monkeypatch):
    """Approving an erasure (the four-eyes path: two DPOs) deletes the leftovers too: an old worker's ``.work``
    file cannot be told to belong to one citizen, so every erasure sweeps them all."""
    monkeypatch.setattr(calls, "enqueue_transcription", lambda call: None)
    citizen = CitizenFactory()
    AppealFactory(citizen=citizen)
    leftovers = _plant_leftovers()
    req = rights.request_erasure(citizen.id, "отзыв согласия, заявление", user=make_user("dpo"))
    rights.approve_erasure(req, user=make_user("dpo"))
    assert [p for p in leftovers if p.exists()] == []


def test_the_decrypting_reader_reads_and_seeks_like_the_plaintext(ctx, monkeypatch):
    """What the decoder reads: the stored recording's bytes at any position, and a damaged file
    refused (no garbage)."""
    from crm.security import crypto

    monkeypatch.setattr(calls, "enqueue_transcription", lambda call: None)
    wav = _noise_wav(5)  # 160,044 bytes: three 64 KiB chunks, the last one short
    call = calls.store_recording(io.BytesIO(wav), "r.wav")
    with calls.decrypted_recording(call) as plain:
        assert plain.read() == wav
        for at, n in ((0, 44), (65530, 20), (131072, 70000), (len(wav) - 3, 10)):
            assert plain.seek(at) == at and plain.read(n) == wav[at:at + n]
        assert plain.seek(-10, os.SEEK_END) == len(wav) - 10 and plain.read() == wav[-10:]
    stored = calls.recording_path(call)
    stored.write_bytes(stored.read_bytes()[:-100])
    with pytest.raises(crypto.DecryptError):
        with calls.decrypted_recording(call) as plain:
            plain.read()
