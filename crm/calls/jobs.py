"""Background jobs of the calls package. Each takes ids and is safe to run twice."""
from __future__ import annotations

import json
import time
from pathlib import Path

from crm import hooks
from crm.calls import transcription
from crm.calls.transcription import AudioDecodeError, ensure_model
from crm.calls.services import TRANSCRIBE_RETRIES, TRANSCRIBE_RETRY_INTERVALS_S, job_timeout_s
from crm.db import db
from crm.jobs import job, job_context
from crm.calls import services, vocabulary
from crm.calls.models import Call


def model_dir(app) -> Path:
    """The Whisper model directory: ``CRM_WHISPER_MODEL`` or Whisper base assembled in ``instance/models``."""
    configured = app.config["CRM_WHISPER_MODEL"]
    return Path(configured) if configured else ensure_model(Path(app.config["CRM_MODELS_DIR"]))


@job(queue="transcription", timeout_s=job_timeout_s(None), retries=TRANSCRIBE_RETRIES,
     retry_intervals_s=TRANSCRIBE_RETRY_INTERVALS_S, result_ttl_s=86400)
def transcribe_call(call_id: str, force: bool = False, purpose: str = "appeal_processing") -> str:
    """Transcribe one call (``call_id``); returns its status afterwards (``done``, ``no_speech``,
    ``failed``, ``missing`` for an unknown id, or ``refused``). A call already ``done``/``no_speech``
    is left alone unless ``force``, so a duplicate job is harmless.

    ``purpose`` (``appeal_processing`` for an upload's transcription, ``call_recording_qa`` for a
    supervisor's re-run) is checked again here, when the job runs, against the gate reading the
    transcript passes (:func:`crm.calls.services.transcription_refusal`: the QA consent may have been
    withdrawn, or the recording destroyed, since the job was queued): a refused call is not
    decrypted, keeps the transcript it has (``done``) or ends ``failed``, with the refusal's code
    (``no_consent``, ``erased``, ``recording_destroyed``) in ``error_code``; no retry.

    Retry policy: undecodable input (:class:`crm.calls.transcription.AudioDecodeError`) ends ``failed`` at
    once with its code and Russian message, and the job *returns* (RQ records it finished: no
    retry). Any other error is transient (storage, database, model): while RQ retries remain
    (:data:`crm.calls.services.TRANSCRIBE_RETRIES`, waits of
    :data:`~crm.calls.services.TRANSCRIBE_RETRY_INTERVALS_S`) the call goes back to ``queued`` with
    the reason in ``error`` and the exception is re-raised so RQ schedules the retry; on the last
    attempt the call ends ``failed`` (code ``internal``) and the exception is re-raised."""
    from rq import get_current_job


    with job_context() as app:
        call = db.session.get(Call, call_id)
        if call is None:
            return "missing"
        if call.status in ("done", "no_speech") and not force:
            return call.status
        refusal = services.transcription_refusal(call, purpose)
        if refusal is not None:
            services.refuse_transcription(call, refusal)
            return "refused"
        services.start_transcription(call)
        last = [0.0]

        def progress(percent: float) -> None:
            if time.monotonic() - last[0] > 2 or percent >= 100:
                last[0] = time.monotonic()
                services.set_progress(call_id, percent)

        prompt = vocabulary.prompt_for(call.operator_id)  # before the long work: no session held during it
        try:
            with services.decrypted_recording(call, purpose=purpose) as audio:  # decrypted in memory, never on disk
                db.session.commit()  # no transaction (or SQLite write lock) held during the long work
                result = transcription.transcribe(audio, model_dir=model_dir(app), language=app.config["CRM_LANGUAGE"],
                                    channel_roles=tuple(app.config["CRM_CHANNEL_ROLES"]),
                                    cpu_threads=app.config["CRM_WHISPER_THREADS"], progress=progress,
                                    prompt=prompt)
        except AudioDecodeError as exc:
            # Final even when exc.retryable (``truncated``: "the file may still be being written").
            # That holds for a file straight from the PBX, not for what this job reads: a decrypted
            # copy of the stored upload, which was complete when it was encrypted (a WAV truncated
            # at upload is refused there with 400 ``recording_truncated``, so the sender retries
            # with the finished file) and whose chunked AEAD refuses a cut ciphertext. The bytes
            # cannot grow, so a retry would decode the same truncated audio again (bad-audio
            # README: "damaged, or retried later if the file may still be growing").
            db.session.rollback()
            services.fail(db.session.get(Call, call_id), exc.code, exc.message_ru)
            return "failed"
        except Exception as exc:
            db.session.rollback()
            call = db.session.get(Call, call_id)
            job = get_current_job()
            retries_left = bool(job and job.retries_left)
            if retries_left:
                services.requeue_after_error(call, f"временная ошибка, повтор: {type(exc).__name__}: {exc}")
            else:
                services.fail(call, "internal", f"ошибка расшифровки: {type(exc).__name__}: {exc}"[:500])
            raise
        call = db.session.get(Call, call_id)
        stored = services.save_transcript(call, result)
        # e.g. QA's automatic checks: from the segments as stored (numbers in digits), as ``crm qa recheck`` reads them
        hooks.fire("call.transcribed", call_id=call_id, segments=stored)
        return call.status


@job(result_ttl_s=600)
def reconcile_calls() -> dict:
    """Periodic job (crm.schedule): mend calls whose transcription job died
    (:func:`crm.calls.services.reconcile`). Returns its counts."""

    with job_context():
        return services.reconcile()


@job(timeout_s=600, retries=3, retry_intervals_s=(60, 600, 3600))
def destroy_qa_recordings_job(citizen_id: str) -> dict:
    """Destroy the recordings the citizen ``citizen_id`` kept only for quality control, after a
    withdrawal of the ``call_recording_qa`` consent (:func:`crm.calls.services.destroy_qa_recordings`).
    Enqueued on the ``consent.changed`` hook (:mod:`crm.calls.hooks`); the retention run
    (:mod:`crm.consent.retention`, daily) does the same for any withdrawal still open, so the 30 days of
    152-ФЗ ст. 21 ч. 5 hold even when Redis was down. Safe to run twice. Returns ``{"record": id or
    None, "recordings": n}``."""
    with job_context():
        record = services.destroy_qa_recordings(citizen_id)
        return {"record": record.id if record else None,
                "recordings": len(json.loads(record.detail)["calls"]) if record else 0}


@job(timeout_s=3600, result_ttl_s=86400)
def rekey_recordings_job(batch: int = 100) -> dict:
    """Give every recording stored before migration 0018 (encrypted under its citizen's key) a data
    key of its own (:func:`crm.calls.services.rekey_recording`), ``batch`` calls per query, until
    none is left. Safe to run twice. Returns how many were re-keyed and how many were skipped
    (file missing), ``{"rekeyed": n, "missing": n}``."""
    with job_context():
        out = {"rekeyed": 0, "missing": 0}
        seen: set[str] = set()
        while True:
            ids = [i for i in services.shared_key_recordings(batch) if i not in seen]
            if not ids:
                return out
            for call_id in ids:
                seen.add(call_id)
                result = services.rekey_recording(call_id)
                if result in out:
                    out[result] += 1
