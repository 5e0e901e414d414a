"""Transcription jobs that fail or die: a call whose job died (worker killed, job failed or lost)
never stays ``processing``; transient errors are retried with backoff, undecodable input is not;
the job timeout scales with the recording; a re-run is logged and queued once however often it is
asked for."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import wave
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from rq.job import Job

from crm import jobs
from crm.calls import services as calls
from crm.calls.models import Call
from crm.db import db
from crm.security.models import AccessLogEntry
from tests.conftest import TEST_DATA
from tests.factories import CallFactory, CitizenFactory
from tests.wavs import silence_wav as _silence_wav, tone_wav


def test_processing_call_with_lost_job_is_requeued_then_failed(ctx):
    call = calls.store_recording(io.BytesIO(tone_wav()), "a.wav")
    from crm import jobs

    jobs.queue("transcription").empty()  # the job is lost, as if Redis had been flushed
    call.status = "processing"
    call.attempts = 1
    db.session.commit()
    assert calls.reconcile() == {"requeued": 1, "failed": 0}
    db.session.expire_all()
    call = db.session.get(Call, call.id)
    assert call.status == "queued" and jobs.queue("transcription").count == 1
    jobs.queue("transcription").empty()
    call.status = "processing"
    call.attempts = calls.MAX_ATTEMPTS
    db.session.commit()
    assert calls.reconcile() == {"requeued": 0, "failed": 1}
    db.session.expire_all()
    call = db.session.get(Call, call.id)
    assert call.status == "failed" and call.error_code == "abandoned"


def test_live_job_is_left_alone(ctx):
    call = calls.store_recording(io.BytesIO(tone_wav()), "a.wav")
    assert calls.reconcile() == {"requeued": 0, "failed": 0}
    db.session.expire_all()
    assert db.session.get(Call, call.id).status == "queued"


# the one-turn transcript of a call that is already transcribed
ONE_TURN = [{"start": 0.0, "end": 1.0, "speaker": "citizen", "channel": None, "text": "Батареи холодные"}]


def _transcribed(**kwargs) -> Call:
    """A transcribed call of a new citizen who consents to QA (a supervisor's re-run is quality control,
    which the consent gate allows only then) (tests.factories.CallFactory), its upload's job removed."""
    call = CallFactory(citizen=CitizenFactory(qa_consent=True), segments=ONE_TURN, checks=False, **kwargs)
    jobs.queue("transcription").empty()  # the upload's job: done with
    return call


def _job(call: Call) -> Job:
    return Job.fetch(call.job_id, connection=jobs.redis_connection())


def _fresh(call_id: str) -> Call:
    db.session.expire_all()
    return db.session.get(Call, call_id)


# --- job limits ------------------------------------------------------------------------------------

def test_job_timeout_scales_with_the_recording(ctx):
    """RQ's default limit (180 s) would kill any long call (pitfalls.md): 5 min + 2 × duration."""
    short = calls.store_recording(io.BytesIO(_silence_wav(2)), "short.wav")
    long = calls.store_recording(io.BytesIO(_silence_wav(900)), "long.wav")
    assert (_job(short).timeout, _job(long).timeout) == (304, 2100)
    assert calls.job_timeout_s(3600) == 7500 and calls.job_timeout_s(None) == 1500  # unknown length: as 10 min
    job = _job(long)
    assert job.retries_left == calls.TRANSCRIBE_RETRIES and job.retry_intervals == [30, 120]
    assert job.result_ttl == 86400
    jobs.queue("transcription").empty()


# --- retry policy ----------------------------------------------------------------------------------

def _make_due(job: Job) -> None:
    """What RQ's scheduler does when a retry's time comes, without waiting for it."""
    q = jobs.queue("transcription")
    q.scheduled_job_registry.remove(job)
    q.enqueue_job(job)


def test_transient_failure_is_retried_with_backoff_then_fails(ctx, run_worker):
    """Storage briefly unreadable (the recording file is missing): two retries 30 s and 120 s
    later, the call ``queued`` with the reason meanwhile, then ``failed`` with a Russian reason."""
    call = CallFactory(citizen=CitizenFactory(), transcribed=False)
    calls.recording_path(call).unlink()
    q = jobs.queue("transcription")
    for attempt, wait_s in ((1, 30), (2, 120)):
        before = datetime.now(timezone.utc)
        run_worker()
        after = datetime.now(timezone.utc)
        call = _fresh(call.id)
        assert call.status == "queued" and call.attempts == attempt
        assert call.error.startswith("временная ошибка, повтор: FileNotFoundError")
        job = _job(call)
        assert job.get_status() == "scheduled" and job.retries_left == 2 - attempt
        due = q.scheduled_job_registry.get_scheduled_time(job)
        # the retry is due wait_s after the failure, which happened while the worker ran
        # (bounded by the clock on each side, so a slow machine cannot fail it)
        assert before + timedelta(seconds=wait_s - 1) <= due <= after + timedelta(seconds=wait_s + 1)
        assert calls.reconcile() == {"requeued": 0, "failed": 0}  # a scheduled retry is alive
        _make_due(job)
    run_worker()
    call = _fresh(call.id)
    assert (call.status, call.error_code, call.attempts) == ("failed", "internal", 3)
    assert call.error.startswith("ошибка расшифровки: FileNotFoundError")
    assert _job(call).get_status() == "failed" and q.scheduled_job_registry.count == 0
    assert calls.reconcile() == {"requeued": 0, "failed": 0}


def test_undecodable_recording_fails_at_once_without_retry(ctx, run_worker):
    """A truncated WAV (header promises more than the file holds) is final: the job reads a copy of
    the stored upload, which cannot grow, so retrying would decode the same bytes."""
    from crm.security import crypto

    call = CallFactory(citizen=CitizenFactory(), audio=_silence_wav(5),
                       transcribed=False)
    data = _silence_wav(5)[:8000]
    out = io.BytesIO()
    crypto.encrypt_stream(io.BytesIO(data), out, file_key=call.storage_key, owner_id=call.recording_owner)
    calls.recording_path(call).write_bytes(out.getvalue())
    run_worker()
    call = _fresh(call.id)
    assert (call.status, call.error_code, call.attempts) == ("failed", "truncated", 1)
    assert call.error.startswith("Запись обрезана")
    assert _job(call).get_status() == "finished"  # returned, not raised: RQ schedules nothing
    assert jobs.queue("transcription").scheduled_job_registry.count == 0
    entry = db.session.execute(db.select(AccessLogEntry).where(AccessLogEntry.action == "transcript.fail")).scalar_one()
    assert entry.detail == "truncated" and entry.citizen_id == call.citizen_id


# --- re-running a transcription --------------------------------------------------------------------

def test_retranscribe_is_logged_and_a_double_click_queues_once(ctx, make_user, login):
    sup = make_user("supervisor")
    call = _transcribed()
    client = login(sup)
    q = jobs.queue("transcription")
    for _ in range(2):
        resp = client.post(f"/calls/{call.id}/retranscribe")
        assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/calls/{call.id}")
    call = _fresh(call.id)
    assert (call.status, call.progress, call.error, call.attempts) == ("queued", 0.0, None, 0)
    assert q.count == 1 and q.job_ids == [call.job_id]
    assert _job(call).timeout == calls.job_timeout_s(call.duration_s)
    entries = db.session.execute(db.select(AccessLogEntry)
                                 .where(AccessLogEntry.action == "call.retranscribe")).scalars().all()
    assert [(e.actor_id, e.citizen_id, e.call_id, e.purpose, e.detail) for e in entries] == [
        (sup.id, call.citizen_id, call.id, "call_recording_qa", "was done")]
    page = client.get(f"/calls/{call.id}").get_data(as_text=True)
    assert "уже в очереди" in page
    q.empty()


def test_retranscribe_api(ctx, make_user, api_token):
    sup, op = make_user("supervisor"), make_user("operator")
    call = _transcribed(operator=op)
    client = ctx.test_client()
    url = f"/api/v1/calls/{call.id}/transcription"
    assert client.post(url, headers=api_token(op)).status_code == 403
    assert client.post("/api/v1/calls/no-such-call/transcription", headers=api_token(sup)).status_code == 404
    resp = client.post(url, headers=api_token(sup))
    assert resp.status_code == 202, resp.get_data()
    assert resp.json["status"] == "queued" and resp.headers["Location"].endswith(f"/calls/{call.id}")
    again = client.post(url, headers=api_token(sup))
    assert again.status_code == 409 and again.json["error"]["code"] == "already_queued"
    assert jobs.queue("transcription").count == 1
    # a call whose job is gone (Redis flushed, worker killed) may be re-run although it says processing
    jobs.queue("transcription").empty()
    call = _fresh(call.id)
    call.status = "processing"
    db.session.commit()
    assert client.post(url, headers=api_token(sup)).status_code == 202
    assert jobs.queue("transcription").count == 1
    # no recording, no re-run
    jobs.queue("transcription").empty()
    call = _fresh(call.id)
    call.status = "failed"
    db.session.commit()
    calls.recording_path(call).unlink()
    resp = client.post(url, headers=api_token(sup))
    assert resp.status_code == 409 and resp.json["error"]["code"] == "recording_missing"
    assert _fresh(call.id).status == "failed"
    assert len(db.session.execute(db.select(AccessLogEntry).where(
        AccessLogEntry.action == "call.retranscribe")).scalars().all()) == 2


# --- a worker killed mid-transcription -------------------------------------------------------------

def _long_speech_wav(dest: Path, repeat: int = 5) -> Path:
    """The repository's 28 s test call (G.711 stereo), ``repeat`` times over as 16 kHz PCM stereo
    (about 2.3 min of speech)."""
    import numpy as np

    from crm.calls.transcription import decode

    src = TEST_DATA / "audio" / "speech-ru" / "calls" / "dev_call_01_hot_water.stereo8k.wav"
    if not src.exists():
        pytest.skip(f"{src} is absent")
    audio = decode(src)
    pcm = (np.clip(np.stack(audio.channels, axis=1), -1, 1) * 32767).astype("<i2").tobytes()
    with wave.open(str(dest), "wb") as w:
        w.setnchannels(len(audio.channels))
        w.setsampwidth(2)
        w.setframerate(audio.rate)
        for _ in range(repeat):
            w.writeframes(pcm)
    return dest


def _worker_env(app) -> dict:
    """Environment for `crm worker` to see this test run's database, keys, Redis and queues."""
    env = {**os.environ, "CRM_INSTANCE_PATH": app.instance_path, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "CRM_QUEUE_PREFIX": app.config["CRM_QUEUE_PREFIX"], "CRM_SECRET_KEY": app.config["SECRET_KEY"],
           "CRM_WHISPER_THREADS": "1"}
    for key in ("REDIS_URL", "CRM_KEYSTORE_URL", "CRM_WHISPER_MODEL"):
        if app.config.get(key):
            env[key] = str(app.config[key])
        else:
            env.pop(key, None)
    return env


def _poll(call_id: str, until, timeout_s: float, proc: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        row = db.session.execute(db.select(Call.status, Call.progress).where(Call.id == call_id)).one()
        db.session.rollback()  # SQLite: a read transaction holds the write lock (BEGIN IMMEDIATE)
        if until(row):
            return row
        if proc.poll() is not None:
            pytest.fail(f"the worker exited ({proc.returncode}) before the call got there: {row}\n"
                        + log.read_text()[-3000:])
        time.sleep(0.2)
    return None


@pytest.mark.model
def test_worker_killed_mid_transcription_is_requeued_by_reconcile(ctx, tmp_path):
    """`crm worker` transcribing a call is SIGKILLed. RQ still says ``started`` (its registry would
    wait for the job's heartbeat TTL: job timeout + 60 s) and the call says ``processing``; the
    reconciler sees the worker's pid is gone, takes the job over and re-queues the call."""
    from crm.calls.jobs import model_dir

    crm_bin = Path(sys.executable).with_name("crm")
    if not crm_bin.exists():
        pytest.skip(f"{crm_bin} is absent: install the project (make install)")
    model_dir(ctx)  # assemble the model here, so the kill cannot land in the middle of that
    with open(_long_speech_wav(tmp_path / "long.wav"), "rb") as fh:
        call = CallFactory(citizen=CitizenFactory(), audio=fh.read(),
                           transcribed=False)
    call_id, first_job = call.id, call.job_id
    db.session.commit()
    log = tmp_path / "worker.log"
    conn = jobs.redis_connection()
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(crm_bin), "worker", "--burst"], env=_worker_env(ctx), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    worker_name = None
    try:
        assert _poll(call_id, lambda r: r.status == "processing", 120, proc, log), "never processing"
        # under way: the model loaded and the first part transcribed (else killed while loading; same outcome)
        _poll(call_id, lambda r: r.progress > 0, 90, proc, log)
        job = Job.fetch(first_job, connection=conn)
        worker_name = job.worker_name
        assert job.get_status() == "started" and worker_name
        os.kill(proc.pid, signal.SIGKILL)  # `crm worker` is non-forking: this process runs the job
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    try:
        assert proc.returncode == -signal.SIGKILL
        call = _fresh(call_id)
        assert (call.status, call.attempts) == ("processing", 1)  # what the bug looked like
        assert first_job in jobs.queue("transcription").started_job_registry.get_job_ids()  # RQ alone: still alive

        assert calls.reconcile() == {"requeued": 1, "failed": 0}
        call = _fresh(call_id)
        assert call.status == "queued" and call.job_id != first_job and call.error is None
        assert _job(call).get_status() == "queued"
        old = Job.fetch(first_job, connection=conn)
        assert old.get_status() == "failed"
        # taken out of RQ's started registry: its own clean-up will never retry it beside ours
        registry = jobs.queue("transcription").started_job_registry
        assert first_job not in registry.get_expired_job_ids(time.time() + 10 ** 7)
        assert calls.reconcile() == {"requeued": 0, "failed": 0}  # the new job is alive
    finally:
        jobs.queue("transcription").empty()
        if worker_name:
            from rq.worker import Worker
            from rq.worker_registration import clean_worker_registry

            conn.delete(Worker.redis_worker_namespace_prefix + worker_name)
            for name in jobs.QUEUES:
                clean_worker_registry(jobs.queue(name))


def test_killed_job_of_a_call_out_of_attempts_fails_with_a_russian_reason(ctx):
    """The same take-over on the last attempt ends ``failed`` (a worker record whose pid is gone)."""
    call = calls.store_recording(io.BytesIO(tone_wav()), "a.wav")
    conn = jobs.redis_connection()
    q = jobs.queue("transcription")
    job = q.dequeue_any([q], None, connection=conn)[0]  # taken by a "worker" ...
    from rq.worker import SimpleWorker

    worker = SimpleWorker([q], connection=conn)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    worker.pid = dead.pid  # ... whose process is gone (the pid of a child that has exited and been reaped)
    worker.register_birth()
    worker.prepare_execution(job)
    worker.prepare_job_execution(job)
    try:
        assert job.get_status(refresh=True) == "started"
        call = _fresh(call.id)
        call.status, call.attempts = "processing", calls.MAX_ATTEMPTS
        db.session.commit()
        assert calls.reconcile() == {"requeued": 0, "failed": 1}
        call = _fresh(call.id)
        assert (call.status, call.error_code) == ("failed", "abandoned")
        assert call.error.startswith("расшифровка прервана")
        assert job.get_status(refresh=True) == "failed"
    finally:
        conn.delete(worker.key)
        q.empty()
