"""Calls: storing a recording (validated, encrypted), transcription state, transcripts with logging."""
from __future__ import annotations

import io
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import redis
from flask import current_app, has_request_context
from sqlalchemy import func, select, update as sql_update

from crm import hooks, jobs, text_ru
from crm.calls import transcript, vocabulary
from crm.calls.models import STATUS_RU, Call, Segment  # noqa: F401  (STATUS_RU: public, for pages)
from crm.calls.transcription import EMPTY_RU, AudioDecodeError, AudioInfo, numbers, probe
from crm.citizens import services as citizens
from crm.users import services as users
from crm.consent import services as consent
from crm.db import atomic, db, new_id, utcnow
from crm.errors import Conflict, CrmError, Forbidden, Gone, NotFound
from crm.i18n import N_, LazyText, format_number, lazy_gettext as _l
from crm.security import audit, crypto, keystore, spool
from crm.security.models import AccessLogEntry, DestructionRecord


class CallError(CrmError, ValueError):
    """A recording refused at upload or a bad call request; Russian message, ``code`` for the API,
    ``status`` the HTTP status (400 unless given)."""

    def __init__(self, message: str, code: str = "invalid_recording", status: int = 400):
        super().__init__(message, code=code, status=status)


def recording_refusal_code(code: str) -> str:
    """The API's error code for a recording refused as undecodable, from the decoder's
    (:class:`crm.calls.transcription.AudioDecodeError` ``code``): ``empty`` → ``empty_recording``, any
    other ``<code>`` → ``recording_<code>`` (``recording_not_audio``, ``recording_damaged``,
    ``recording_unsupported_codec``, ``recording_truncated``, ``recording_too_long``). The one mapping
    for ``POST /api/v1/calls`` (:func:`stage_upload`) and ``crm transcribe`` (:mod:`crm.calls.cli`)."""
    return "empty_recording" if code == "empty" else f"recording_{code}"


#: The transcription lifecycle: status → the statuses a call may move to from it (self-moves are a
#: re-queue by the reconciler or a retried job). ``queued`` → ``processing`` when a job starts;
#: ``processing`` (or straight from ``queued``, a transcript saved by a tool) → ``done``/``no_speech``
#: with the transcript, ``failed``, or back to ``queued`` for a retry; any finished call may be queued
#: again (:func:`retranscribe`) or re-run by a forced job.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "queued": ("queued", "processing", "done", "no_speech", "failed"),
    "processing": ("queued", "processing", "done", "no_speech", "failed"),
    "done": ("queued", "processing"),
    "no_speech": ("queued", "processing"),
    "failed": ("queued", "processing", "failed"),
}
TRANSCRIBED = ("done", "no_speech")


def set_status(call: Call, to_status: str) -> None:
    """Move ``call`` to ``to_status`` if :data:`TRANSITIONS` allows it (no commit). Raises
    :class:`crm.errors.Conflict` (``bad_transition``) otherwise."""
    if to_status not in TRANSITIONS.get(call.status, ()):
        raise Conflict(_l("звонок нельзя перевести из «%(from_status)s» в «%(to_status)s»",
                          from_status=_l(STATUS_RU.get(call.status, call.status)),
                          to_status=_l(STATUS_RU.get(to_status, to_status))), code="bad_transition")
    call.status = to_status


def start_transcription(call: Call) -> None:
    """A transcription job takes ``call``: ``processing``, progress 0, one more attempt. Commits."""
    set_status(call, "processing")
    call.started_at = utcnow()
    call.progress = 0.0
    call.attempts += 1
    db.session.commit()


def requeue_after_error(call: Call, reason: str) -> None:
    """A transient error with retries left: back to ``queued`` with ``reason`` (Russian, cut to 500
    characters) in ``error``. Commits."""
    set_status(call, "queued")
    call.error = reason[:500]
    db.session.commit()


def get_for(user, call_id: str) -> Call:
    """The call ``call_id`` as ``user`` may see it: an operator only their own calls (supervisors and
    admins every call). Raises :class:`crm.errors.NotFound` for an unknown id and
    :class:`crm.errors.Forbidden` for another operator's call."""
    call = get(call_id) if call_id else None
    if call is None:
        raise NotFound(_l("звонок не найден"))
    if getattr(user, "role", None) == "operator" and call.operator_id != user.id:
        raise Forbidden(_l("оператор видит только свои звонки"))
    return call


def is_erased(call: Call) -> bool:
    """True when the citizen of ``call`` was erased (crypto-shredded, :mod:`crm.security.shredding`):
    its recording, file name and transcript are destroyed, so there is nothing to play, show or score."""
    if call.citizen_id is None:
        return False
    citizen = citizens.get(call.citizen_id)
    return citizen is not None and citizen.erased_at is not None


def _require_recording(call: Call) -> None:
    """Raise :class:`crm.errors.Gone` (410 ``erased``) when the call's data were destroyed, or
    (410 ``recording_destroyed``) when its recording was destroyed after a QA-consent withdrawal."""
    if is_erased(call):
        raise Gone(_l("Данные звонка уничтожены по запросу заявителя: запись удалена."), code="erased")
    if call.recording_destroyed_at is not None:
        raise Gone(_l("Запись звонка уничтожена: заявитель отозвал согласие на запись для контроля качества."),
                   code="recording_destroyed")


def read_purpose(user) -> str:
    """The purpose a read of a call is logged under: an operator works on the appeal
    (``appeal_processing``), everyone else does quality control (``call_recording_qa``)."""
    return "appeal_processing" if getattr(user, "role", None) == "operator" else "call_recording_qa"


QA_PURPOSE = "call_recording_qa"


def qa_allowed(call) -> bool:
    """May ``call`` (a row with ``citizen_id``) be used for quality control: its transcript or
    recording shown to a QA reader, its transcript searched? QA's consent gate answers through the
    ``call.qa_allowed`` hook (:func:`crm.qa.services.common.qa_permitted`); without an answer, no."""
    return hooks.ask("call.qa_allowed", call=call) is True


def may_read(call, purpose: str) -> bool:
    """May ``call``'s transcript and recording be read for ``purpose`` (:func:`read_purpose`)? For
    quality control only through the QA-consent gate (:func:`qa_allowed`); for the appeal, yes."""
    return purpose != QA_PURPOSE or qa_allowed(call)


def _dir(key: str) -> Path:
    path = Path(current_app.config[key])
    path.mkdir(parents=True, exist_ok=True)
    return path


def recording_path(call: Call) -> Path:
    return _dir("CRM_RECORDINGS_DIR") / f"{call.storage_key}.rec"


def job_timeout_s(duration_s: float | None) -> int:
    """Job limit in seconds: 5 min plus twice the audio length (RTF 2 is far beyond what we measure),
    so an hour-long call gets over two hours instead of RQ's default 180 s (pitfalls.md)."""
    return int(300 + 2 * (duration_s or 600))


@dataclass
class StagedRecording:
    """An upload copied to a private, already unlinked temporary file kept encrypted under a key
    held only in memory (``file``, a seekable ``w+b`` file object; :func:`_unnamed_tempfile`) and
    validated, not yet stored. Nothing of it is readable once the process ends, however it ends,
    even one killed before :meth:`discard`."""

    file: BinaryIO
    original_name: str
    size_bytes: int
    info: AudioInfo

    def discard(self) -> None:
        self.file.close()


def _unnamed_tempfile() -> BinaryIO:
    """A seekable ``w+b`` temporary file in ``recordings/incoming`` (appended to, then read):
    unlinked from the start (Linux ``O_TMPFILE``) and encrypted on disk under a key that exists only
    in this process's memory (:class:`crm.security.spool.EncryptedSpool`), so the plaintext of an
    upload is never on disk, not even in blocks a crash leaves behind."""
    tmp_dir = _dir("CRM_RECORDINGS_DIR") / "incoming"
    tmp_dir.mkdir(exist_ok=True)
    return io.BufferedRandom(spool.EncryptedSpool(dir=tmp_dir), buffer_size=1024 * 1024)


def stage_upload(stream: BinaryIO, original_name: str) -> StagedRecording:
    """Copy an upload to an unnamed temporary file (:func:`_unnamed_tempfile`) and validate it
    (content sniffing, header, duration).

    Raises :class:`CallError` for an empty, non-audio, damaged or over-long file, leaving nothing
    behind. The caller must :func:`store_staged` or ``discard()`` the result."""
    tmp = _unnamed_tempfile()
    try:
        shutil.copyfileobj(stream, tmp, 1024 * 1024)
        size = tmp.tell()
        if size == 0:
            raise CallError(_l(EMPTY_RU), recording_refusal_code("empty"))  # as crm transcribe says it
        try:
            info = probe(tmp)
        except AudioDecodeError as exc:
            raise CallError(_l("Запись не принята: %(reason)s", reason=LazyText(exc.message_id, exc.shown_values(
                (lambda v: format_number(v, 1)) if has_request_context() else None))),
                            recording_refusal_code(exc.code)) from None
        if info.duration_s and info.duration_s > current_app.config["CRM_MAX_RECORDING_S"]:
            raise CallError(_l("Запись длиннее допустимого (4 ч)."), recording_refusal_code("too_long"))
    except BaseException:
        tmp.close()
        raise
    return StagedRecording(tmp, (original_name or "recording")[:255], size, info)


def add_staged(staged: StagedRecording, *, appeal=None, operator_id: int | None = None,
               citizen_id: str | None = None) -> Call:
    """Encrypt a staged recording into storage and add its call (``queued``) and the ``call.create``
    access-log entry to the session, without committing: the caller's transaction decides.

    The encrypted file exists once this returns; when that transaction does not commit, the caller
    removes it with :func:`remove_stored` (a process killed in between leaves a ciphertext file no
    call names, unreadable without a row and harmless). The staged file is left to the caller
    (``staged.discard()``). ``citizen_id``: whose call it is when no ``appeal`` is given yet (the
    telephony's recording of a known caller; an appeal is made from it later, :func:`attach_to_appeal`).
    Raises ``OSError`` when the file cannot be written (nothing added then)."""
    info = staged.info
    call = Call(appeal_id=appeal.id if appeal else None, citizen_id=appeal.citizen_id if appeal else citizen_id,
                operator_id=operator_id, status="queued", storage_key=uuid.uuid4().hex,
                size_bytes=staged.size_bytes, audio_format=f"{info.container}/{info.codec}"[:40],
                duration_s=info.duration_s, channels=info.channels, sample_rate=info.sample_rate)
    call.recording_owner_id = call.id  # a key of its own: the recording can be crypto-shredded alone
    call.original_name = staged.original_name
    final = recording_path(call)
    try:
        # mode 0600 from the start (ciphertext, but nobody else on the host needs to read it)
        staged.file.seek(0)
        with os.fdopen(os.open(final, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as dst:
            crypto.encrypt_stream(staged.file, dst, file_key=call.storage_key, owner_id=call.recording_owner)
    except BaseException:
        final.unlink(missing_ok=True)
        raise
    db.session.add(call)
    audit.record("call.create", citizen_id=call.citizen_id, call_id=call.id, appeal_id=call.appeal_id,
                 fields=["recording"], purpose="appeal_processing")
    return call


def remove_stored(call: Call) -> None:
    """Delete the encrypted file :func:`add_staged` wrote for ``call`` (its transaction did not commit)."""
    recording_path(call).unlink(missing_ok=True)


def store_staged(staged: StagedRecording, *, appeal=None, operator_id: int | None = None,
                 citizen_id: str | None = None) -> Call:
    """Encrypt a staged recording into storage, create the call (``queued``), commit, enqueue the
    transcription (:func:`add_staged` in a transaction of its own). The temporary file is removed in
    every case, and the encrypted one too when the commit fails."""
    call = None
    try:
        call = add_staged(staged, appeal=appeal, operator_id=operator_id, citizen_id=citizen_id)
        db.session.commit()
    except Exception:
        db.session.rollback()
        if call is not None:
            remove_stored(call)
        raise
    finally:
        staged.discard()
    enqueue_transcription(call)
    return call


def store_recording(stream: BinaryIO, original_name: str, *, appeal=None, operator_id: int | None = None,
                    citizen_id: str | None = None) -> Call:
    """Validate and store an uploaded recording (:func:`stage_upload` then :func:`store_staged`).
    Raises :class:`CallError`; then nothing is stored."""
    return store_staged(stage_upload(stream, original_name), appeal=appeal, operator_id=operator_id,
                        citizen_id=citizen_id)


def unattached_for_citizen(citizen_id: str, limit: int = 5, days: int = 7) -> list[Call]:
    """The citizen's calls of the last ``days`` not yet in any appeal, newest first (recordings the
    telephony stored for a known caller): what a new appeal of theirs attaches instead of an upload.
    Nothing decrypted."""
    since = utcnow() - timedelta(days=days)
    return list(db.session.execute(db.select(Call).where(Call.citizen_id == citizen_id, Call.appeal_id.is_(None),
                                                         Call.recording_destroyed_at.is_(None),
                                                         Call.created_at >= since)
                                   .order_by(Call.created_at.desc()).limit(limit)).scalars())


def attach_to_appeal(call_id: str, appeal, *, citizen_id: str, user_id: int | None) -> Call:
    """Put the stored call ``call_id`` of the citizen ``citizen_id`` into ``appeal`` (its
    ``appeal_id``), in the caller's transaction (not committed); logged as ``call.attach``. The call
    must be that citizen's and in no other appeal: its ciphertexts stay bound to the citizen's key,
    so a call is never moved to another person. Raises :class:`CallError` otherwise."""
    call = db.session.get(Call, call_id)
    if call is None or call.citizen_id != citizen_id:
        raise CallError(_l("звонок не найден у этого заявителя"), "call_not_found", 404)
    if call.appeal_id is not None and call.appeal_id != appeal.id:
        raise CallError(_l("звонок уже добавлен к другому обращению"), "call_attached", 409)
    call.appeal_id = appeal.id
    audit.record("call.attach", citizen_id=call.citizen_id, call_id=call.id, appeal_id=appeal.id,
                 purpose="appeal_processing")
    return call


def enqueue_transcription(call: Call, *, purpose: str = "appeal_processing") -> None:
    """Queue the transcription job of ``call`` (after its commit) with a timeout scaled to the
    recording (:func:`job_timeout_s`) and two retries 30 s and 120 s later for transient failures
    (undecodable input fails at once, see :func:`crm.calls.jobs.transcribe_call`). ``purpose``: what
    the transcript is made for — the appeal the call was uploaded with (``appeal_processing``, the
    default), or quality control (``call_recording_qa``, a supervisor's re-run), which the job checks
    against the consent gate again when it runs. ``purpose`` is kept on the call
    (``transcription_purpose``), so :func:`reconcile` re-queues a dead job for the same purpose. If
    Redis is down the call stays ``queued`` with a note and no job id, and :func:`reconcile` picks it
    up later."""
    try:
        call.transcription_purpose = purpose  # the reconciler re-queues a dead job with it
        job = jobs.enqueue("crm.calls.jobs.transcribe_call", call.id, False, purpose,
                           timeout_s=job_timeout_s(call.duration_s))
        call.job_id = job.id
        call.error = None
    except Exception as exc:  # redis unavailable: keep the call, say why
        call.job_id = None
        call.error = f"очередь недоступна, задание будет поставлено повторно ({type(exc).__name__})"
    db.session.commit()


#: RQ retries of a transcription job after a transient error, and the waits before them (seconds).
TRANSCRIBE_RETRIES = 2
TRANSCRIBE_RETRY_INTERVALS_S = (30, 120)
MAX_ATTEMPTS = 3
#: RQ job states in which the job will still run (or is running) by itself.
_LIVE_JOB_STATES = ("queued", "started", "scheduled", "deferred")


def _worker_dead(conn, worker_name: str | None) -> bool:
    """True when the RQ worker ``worker_name`` is certainly gone: its ``rq:worker:<name>`` key has
    expired (no heartbeat within its TTL) or records a death, or it ran on this host and its pid
    no longer exists (SIGKILL, the OOM killer). A live worker on another host, or one whose state
    cannot be read, counts as alive: a job is never taken away from a worker that may still run it.

    A non-forking worker (``crm worker``) sets its key's TTL to the job timeout plus 60 s when it
    starts a job, so after a SIGKILL on another host the expiry can take that long; on the same
    host the pid check answers at once."""
    import socket

    from rq.worker import Worker

    if not worker_name:
        return False
    try:
        data = conn.hgetall(Worker.redis_worker_namespace_prefix + worker_name)
    except Exception:
        return False
    if not data:
        return True
    if b"death" in data:
        return True
    host, pid = data.get(b"hostname", b"").decode(), data.get(b"pid", b"").decode()
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except OSError:  # EPERM: the pid exists (another user's process)
            return False
    return False


def _job_status(conn, call: Call) -> str | None:
    """RQ's state of the call's job as a string (``queued``, ``started``, ``finished``, ``failed``
    …), or None when there is no such job. A ``started`` job whose worker is dead
    (:func:`_worker_dead`) is taken over: removed from the started registry (so RQ's own clean-up
    does not retry it later beside ours) and marked ``failed``; then ``"failed"`` is returned."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    if not call.job_id:
        return None
    try:
        job = Job.fetch(call.job_id, connection=conn)
        status = job.get_status(refresh=True)
    except NoSuchJobError:
        return None
    status = getattr(status, "value", status)
    if status == "started" and _worker_dead(conn, job.worker_name):
        with conn.pipeline() as pipe:
            job.started_job_registry.remove_executions(job, pipeline=pipe)
            job.set_status(JobStatus.FAILED, pipeline=pipe)
            job.failed_job_registry.add(job, ttl=job.failure_ttl, pipeline=pipe,
                                        exc_string=f"abandoned: worker {job.worker_name} is dead (crm reconcile)")
            pipe.execute()
        status = "failed"
    return status


def _busy(conn, call: Call) -> bool:
    """True while a transcription of ``call`` is under way or will start by itself: the call is
    ``queued``/``processing`` and its job is alive, or it is ``queued`` with neither a job id nor
    an error (committed by :func:`retranscribe` or an upload, enqueue about to follow)."""
    if call.status not in ("queued", "processing"):
        return False
    if call.status == "queued" and not call.job_id and not call.error:
        return True
    try:
        return _job_status(conn, call) in _LIVE_JOB_STATES
    except redis.RedisError:
        raise CallError(_l("Очередь заданий недоступна: повторите позже."), "queue_unavailable", 503) from None


def reconcile() -> dict[str, int]:
    """Compare ``queued``/``processing`` calls with RQ's job state and mend what a crash left
    behind: a job missing, failed, stopped or abandoned (its worker killed by SIGKILL or the OOM
    killer, pitfalls.md; detected at once on this host, see :func:`_worker_dead`) is re-queued
    for the purpose it was queued for (``transcription_purpose``: a QA re-run keeps its QA-consent
    check) while attempts remain, else the call is marked ``failed`` with a Russian reason. Calls whose
    job is alive are left alone. Plaintext an earlier version left on disk is deleted first
    (:func:`sweep_plaintext_leftovers`). Returns ``{"requeued": n, "failed": m}``."""
    from rq.registry import StartedJobRegistry

    sweep_plaintext_leftovers()
    conn = jobs.redis_connection()
    q = jobs.queue("transcription")
    StartedJobRegistry(queue=q).cleanup()  # moves jobs whose heartbeat expired to the failed registry
    counts = {"requeued": 0, "failed": 0}
    stale = db.session.execute(db.select(Call).where(Call.status.in_(("queued", "processing")))).scalars().all()
    for call in stale:
        status = _job_status(conn, call)
        if status in _LIVE_JOB_STATES:
            continue
        if status == "finished" and call.status == "queued":
            continue
        if call.attempts >= MAX_ATTEMPTS:
            fail(call, "abandoned", "расшифровка прервана несколько раз (сбой обработчика); запустите повторно")
            counts["failed"] += 1
        else:
            set_status(call, "queued")
            call.progress = 0.0
            db.session.commit()
            # for what it was queued: a QA re-run stays under the QA-consent gate when its job runs
            # (a row queued before migration 0036 has none: an upload's, as then)
            enqueue_transcription(call, purpose=call.transcription_purpose or "appeal_processing")
            counts["requeued"] += 1
    db.session.commit()  # end the read transaction: on SQLite it holds the write lock (`crm worker` runs this first)
    return counts


@atomic
def retranscribe(call: Call, *, purpose: str = "call_recording_qa") -> Call:
    """Queue ``call`` for transcription again (a supervisor's re-run, e.g. after a failure or a
    model change) on behalf of the signed-in user.

    The call row is locked (PostgreSQL ``FOR UPDATE``; SQLite holds its write lock from ``BEGIN
    IMMEDIATE``), so two clicks or two supervisors are serialised: the second finds the call busy.
    In one transaction: status ``queued``, progress 0, error, finish time and attempts cleared, and
    a ``call.retranscribe`` access-log entry (citizen and call ids, ``purpose``); committed, then
    the job is enqueued. The transcript in place stays until the new one replaces it.

    Raises :class:`CallError` 403 ``no_consent`` when the call may not be read for ``purpose`` (for
    quality control: the QA-consent gate, :func:`may_read`, the same as reading its transcript), 410
    ``erased`` / ``recording_destroyed`` when its recording is gone for good, 409 ``already_queued``
    while a transcription is queued or running (:func:`_busy`; a call whose job died may be re-run),
    409 ``recording_missing`` when the stored recording file is gone, 503 ``queue_unavailable`` when
    Redis cannot say whether a queued call's job is alive. Nothing is changed when it refuses.
    Returns the call, ``queued``."""
    call = db.session.execute(db.select(Call).where(Call.id == call.id).with_for_update()
                              .execution_options(populate_existing=True)).scalar_one()
    refusal = transcription_refusal(call, purpose)
    if refusal is not None:
        db.session.rollback()
        raise refusal
    if _busy(jobs.redis_connection(), call):
        db.session.rollback()
        raise CallError(_l("Звонок уже в очереди на расшифровку или расшифровывается."), "already_queued", 409)
    if not recording_path(call).exists():
        db.session.rollback()
        raise CallError(_l("Файл записи не найден в хранилище: расшифровать заново нельзя."), "recording_missing", 409)
    previous = call.status
    set_status(call, "queued")
    call.progress = 0.0
    call.error = call.error_code = None
    call.started_at = call.finished_at = None
    call.attempts = 0
    call.job_id = None
    audit.record("call.retranscribe", citizen_id=call.citizen_id, call_id=call.id, appeal_id=call.appeal_id,
                 fields=["recording"], purpose=purpose, detail=f"was {previous}")
    db.session.commit()
    enqueue_transcription(call, purpose=purpose)
    return call


NO_CONSENT_RU = ("Заявитель не давал согласия на запись звонка для контроля качества или отозвал его: "
                 "расшифровывать звонок для контроля качества нельзя.")
NO_CITIZEN_RU = ("Звонок не привязан к заявителю: согласие на запись для контроля качества проверить не у кого, "
                 "поэтому расшифровывать звонок для контроля качества нельзя.")


def transcription_refusal(call: Call, purpose: str) -> CallError | None:
    """Why ``call`` may not be transcribed for ``purpose`` now, or None. The gate is the one reading
    the transcript passes (:func:`may_read`): for quality control, the citizen's QA consent in force
    (403 ``no_consent``); a recording destroyed with the citizen's data (410 ``erased``) or after a
    QA-consent withdrawal (410 ``recording_destroyed``) is never transcribed again. Asked by
    :func:`retranscribe` and again by the job when it runs (the consent may have been withdrawn
    meanwhile)."""
    if is_erased(call):
        return CallError("Данные звонка уничтожены по запросу заявителя: расшифровать его нельзя.", "erased", 410)
    if call.recording_destroyed_at is not None:
        return CallError("Запись звонка уничтожена: заявитель отозвал согласие на запись для контроля качества.",
                         "recording_destroyed", 410)
    if not may_read(call, purpose):
        # the same refusal (``no_consent``); a call linked to no citizen says so rather than blame a citizen
        return CallError(NO_CONSENT_RU if call.citizen_id else NO_CITIZEN_RU, "no_consent", 403)
    return None


def refuse_transcription(call: Call, refusal: CallError) -> None:
    """A transcription job found at run time that ``call`` may no longer be transcribed
    (:func:`transcription_refusal`): nothing is decrypted; the call goes back to ``done`` when a
    transcript is in place (it stays until destroyed), else ends ``failed``, with the refusal's
    code and message in ``error_code`` / ``error``. Commits."""
    if call.status not in TRANSCRIBED:  # (a forced re-run of a finished call keeps its status)
        set_status(call, "done" if call.segments else "failed")
    call.error, call.error_code = str(refusal)[:500], refusal.code
    call.finished_at = utcnow()
    db.session.commit()


@contextmanager
def decrypted_recording(call: Call, *, purpose: str = QA_PURPOSE) -> Iterator[BinaryIO]:
    """The recording's plaintext as a seekable binary file object for the decoder
    (:func:`crm.security.crypto.open_recording`): decrypted chunk by chunk in memory, never
    written to disk, so a worker killed mid-transcription leaves no plaintext behind. The
    decryption is logged (``call.decrypt`` by the transcription job) and committed first: no
    entry, no plaintext. Raises :class:`FileNotFoundError` when the stored file is gone and
    :class:`crm.security.crypto.DecryptError` when it does not decrypt."""
    audit.record("call.decrypt", citizen_id=call.citizen_id, call_id=call.id, appeal_id=call.appeal_id,
                 fields=["recording"], purpose=purpose, actor=audit.system_actor("transcribe_call"))
    db.session.commit()
    with open(recording_path(call), "rb") as src, \
            crypto.open_recording(src, file_key=call.storage_key, owner_id=call.recording_owner) as plain:
        yield plain


#: Names of plaintext left in ``recordings/incoming`` by earlier versions, which wrote the decrypted
#: recording of a running job (``*.work``) and each upload before its encryption (``*.upload``) to
#: named files that a killed process left behind.
LEFTOVER_PATTERNS = ("*.work", "*.upload")


def sweep_plaintext_leftovers() -> int:
    """Delete every plaintext file an earlier version left in ``recordings/incoming``
    (:data:`LEFTOVER_PATTERNS`; this version names none: uploads are staged in unnamed files and
    recordings decrypted in memory). Run by :func:`reconcile` and at every erasure. Returns how
    many files were deleted."""
    incoming = Path(current_app.config["CRM_RECORDINGS_DIR"]) / "incoming"
    removed = 0
    for pattern in LEFTOVER_PATTERNS:
        for path in incoming.glob(pattern):
            try:
                path.unlink()
                removed += 1
            except FileNotFoundError:
                pass
    return removed


LISTEN_LOG_WINDOW_S = 600


def _log_listen(call: Call, purpose: str) -> None:
    """One ``call.listen`` entry per user, call and 10 minutes: a player's many range requests are
    one listening, not dozens of log entries."""
    from datetime import timedelta

    from flask_login import current_user


    actor_id = getattr(current_user, "id", None) if getattr(current_user, "is_authenticated", False) else None
    recent = db.session.execute(db.select(AccessLogEntry.seq).where(
        AccessLogEntry.action == "call.listen", AccessLogEntry.call_id == call.id,
        AccessLogEntry.actor_id == actor_id,
        AccessLogEntry.at >= utcnow() - timedelta(seconds=LISTEN_LOG_WINDOW_S)).limit(1)).first()
    if recent is None or actor_id is None:
        audit.record("call.listen", citizen_id=call.citizen_id, call_id=call.id, appeal_id=call.appeal_id,
                     fields=["recording"], purpose=purpose)
    db.session.commit()


def read_recording(call: Call, start: int = 0, end: int | None = None, *,
                   purpose: str = "call_recording_qa") -> bytes:
    """Decrypted bytes ``[start, end)`` of the recording (``end`` None: to the end), decrypting only
    the chunks the range touches. Logs the listening (see :func:`_log_listen`).
    Raises :class:`crm.errors.Gone` once the call's data were erased and
    :class:`crm.security.crypto.DecryptError` on a damaged file."""
    _require_recording(call)
    _log_listen(call, purpose)
    end = call.size_bytes if end is None else min(end, call.size_bytes)
    with open(recording_path(call), "rb") as src:
        return crypto.decrypt_range(src, file_key=call.storage_key, owner_id=call.recording_owner,
                                    size=call.size_bytes, start=start, end=end)


def stream_recording(call: Call, *, purpose: str = "call_recording_qa") -> Iterator[bytes]:
    """All decrypted recording bytes as chunks (exports, tests); logs the access first. Raises
    :class:`crm.errors.Gone` once the call's data were erased."""
    _require_recording(call)
    _log_listen(call, purpose)
    src = open(recording_path(call), "rb")

    def gen():
        with src:
            yield from crypto.decrypt_stream(src, file_key=call.storage_key, owner_id=call.recording_owner)
    return gen()


def set_progress(call_id: str, percent: float) -> None:
    """Store transcription progress (0–100) in its own short transaction."""
    db.session.execute(sql_update(Call).where(Call.id == call_id).values(progress=round(percent, 1)))
    db.session.commit()


def as_dict(call: Call, *, transcript: list[dict] | None = None, withheld: str | None = None,
            removed: str | None = None) -> dict:
    """The API shape of a call (``transcript`` given only by :func:`view`, which logs it;
    ``withheld``: why the transcript is not shown, e.g. ``no_consent``; ``removed``: why it no longer
    exists, ``recording_destroyed`` or ``erased``)."""
    data = {"id": call.id, "status": call.status, "error": call.error, "error_code": call.error_code,
            "appeal_id": call.appeal_id, "citizen_id": call.citizen_id, "operator_id": call.operator_id,
            "duration_s": call.duration_s, "channels": call.channels, "sample_rate": call.sample_rate,
            "language": call.language, "rtf": call.rtf, "progress": call.progress,
            "created_at": call.created_at.isoformat(),
            "finished_at": call.finished_at.isoformat() if call.finished_at else None}
    if call.recording_destroyed_at is not None:
        data["recording_destroyed_at"] = call.recording_destroyed_at.isoformat()
    if transcript is not None:
        data["transcript"] = {"segments": transcript}
        if withheld:
            data["transcript"]["withheld"] = withheld
        if removed:
            data["transcript"]["removed"] = removed
    return data


def masks_for(purpose: str, reveal: bool = False) -> bool:
    """Are the citizen's identifiers in a transcript masked for a read for ``purpose``? For quality
    control (QA roles: supervisors, admins) yes, unless revealed; for the appeal (the operator who
    handled the call) no. 152-ФЗ ст. 5 ч. 5: QA judges the operator and needs no phone or address."""
    return purpose == QA_PURPOSE and not reveal


def presented_segments(call: Call, *, mask: bool, detect: bool = False) -> list[dict]:
    """The call's segments as shown (:func:`crm.calls.transcript.present`): text and words masked
    when ``mask``, ``words`` ``[{start, end, word, p}]``, ``pieces`` for the page; with ``detect`` each
    also carries ``found``, the kinds of the citizen's identifiers in it (a reveal logs them).
    Decrypts; logs nothing (the caller does)."""
    unsure_p = float(current_app.config["CRM_WORD_UNSURE_P"])
    operator = users.get(call.operator_id) if (mask or detect) and call.operator_id is not None else None
    keep = transcript.operator_name_forms(operator.full_name) if operator is not None else frozenset()
    streets = vocabulary.register_streets() if mask or detect else None
    known = known_identifiers(call.citizen_id, call.appeal_id) if mask or detect else None
    return [transcript.present({"start": s.start, "end": s.end, "speaker": s.speaker, "channel": s.channel,
                                "text": s.text, "words": s.words}, mask=mask, unsure_p=unsure_p, keep_names=keep,
                               streets=streets, detect=detect, known=known)
            for s in call.segments]


def known_identifiers(citizen_id: str | None, appeal_id: str | None = None, *,
                      memo: dict | None = None) -> text_ru.KnownIdentifiers | None:
    """What the system holds of the call's citizen (``call.citizen_id``, set for an uploaded call from
    its appeal and for a telephony call from the caller) and of the house its appeal is about
    (``call.appeal_id``), for masking their transcript wherever it says it
    (:func:`crm.text_ru.known_identifiers`: their name's words, their streets, house and flat numbers,
    phone digits, e-mail), or None when there is nothing (no citizen or an erased one, and no house).

    The citizen's values are decrypted through :func:`crm.citizens.services.identifiers_for_masking`;
    the appeal's house (the buildings register's address, picked at intake, which the citizen's card
    may not hold) is asked of ``crm.appeals`` (hook ``appeal.masking_address``). Neither logs: the
    values are only matched and replaced by labels, never shown, and the read is the caller's own
    entry (``transcript.view``/``transcript.reveal`` of the call page and the API,
    ``transcript.search`` of the search), which names the citizen and the call. Kept in memory for
    this request only, never cached; ``memo``: a dict the caller keeps for one request (the search),
    so each citizen is decrypted and each appeal asked once."""
    memo = {} if memo is None else memo
    key = ("known", citizen_id, appeal_id)
    if key in memo:
        return memo[key]
    if ("citizen", citizen_id) not in memo:
        memo[("citizen", citizen_id)] = citizens.identifiers_for_masking(citizen_id)
    if ("appeal", appeal_id) not in memo:
        memo[("appeal", appeal_id)] = hooks.ask("appeal.masking_address", appeal_id=appeal_id) if appeal_id else None
    values, house = memo[("citizen", citizen_id)], memo[("appeal", appeal_id)]
    if values is None and house is None:
        memo[key] = None
        return None
    values = values or {"full_name": None, "phone": None, "email": None, "addresses": []}
    memo[key] = text_ru.known_identifiers(full_name=values["full_name"], phone=values["phone"],
                                          email=values["email"],
                                          addresses=[*values["addresses"], *([house] if house else [])])
    return memo[key]


#: Why a QA reader may reveal the citizen's identifiers in a transcript: the processing purpose the
#: reveal is logged under (``transcript.reveal``'s ``purpose``) → what the reveal form says of it.
#: ``appeal_processing`` only for a call tied to an appeal (:func:`reveal_purposes`).
REVEAL_PURPOSES: dict[str, str] = {
    QA_PURPOSE: N_("Контроль качества: проверить, верно ли оператор записал данные заявителя"),
    "appeal_processing": N_("Рассмотрение обращения: данные нужны для работы по обращению (жалоба, уточнение)"),
}
#: The kinds :func:`crm.text_ru.personal_spans` finds → the access log's field categories.
KIND_FIELDS = {"phone": "phone", "name": "full_name", "address": "address", "email": "email"}
#: How long a reveal form's key makes a repeated POST (a double click) log nothing more, seconds.
REVEAL_KEY_TTL_S = 600


def reveal_purposes(call) -> list[str]:
    """The purposes a QA reader may give for revealing ``call``'s transcript (:data:`REVEAL_PURPOSES`)."""
    return [p for p in REVEAL_PURPOSES if p != "appeal_processing" or call.appeal_id]


def _first_use_of_reveal_key(user_id, call_id: str, key: str | None) -> bool:
    """True unless ``key`` (the reveal form's one-time key) already revealed ``call_id`` to ``user_id``
    within :data:`REVEAL_KEY_TTL_S`: a double click sends the form twice, and the second POST shows
    the same data to the same person again without a second log entry. No key, or Redis down: True
    (an access is logged once too often rather than not at all)."""
    key = (key or "").strip()[:64]
    if not key:
        return True
    try:
        return bool(jobs.redis_connection().set(
            current_app.config["CRM_QUEUE_PREFIX"] + f"crm:transcript-reveal:{user_id}:{call_id}:{key}", 1,
            nx=True, ex=REVEAL_KEY_TTL_S))
    except redis.RedisError:
        return True


def view(call: Call, *, purpose: str = "call_recording_qa", commit: bool = True, reveal: bool = False,
         pieces: bool = False, reveal_purpose: str | None = None, reveal_key: str | None = None) -> dict:
    """Call with its decrypted transcript; logs the access. For quality control the citizen's phone
    numbers, names, addresses and e-mail addresses in the segments' text and words are masked
    («[телефон]», «[имя]», «[адрес]», «[e-mail]»; :func:`masks_for`, :mod:`crm.calls.transcript`)
    unless ``reveal``, which is logged as ``transcript.reveal`` instead of ``transcript.view``; the
    operator reading for the appeal sees them. Each segment carries ``words`` (``[{start, end, word,
    p}]``, ``p`` Whisper's probability) and, with ``pieces``, its text cut for the page (doubtful
    words marked). ``erased`` is True once the citizen's
    data were destroyed (:func:`is_erased`): then the transcript is empty (its text is gone) and
    nothing is logged as read. For quality control (``purpose`` ``call_recording_qa``) a call that
    does not pass the QA-consent gate (:func:`may_read`) is given without its transcript:
    ``transcript`` = ``{"segments": [], "withheld": "no_consent"}``, nothing decrypted or logged.
    A call whose recording was destroyed (:func:`destroy_qa_recordings`) has no transcript any more:
    ``{"segments": [], "removed": "recording_destroyed"}`` (``"erased"`` after the citizen's erasure);
    nothing is decrypted then, even a leftover row whose data key is already gone.

    A QA reader's reveal is logged with ``reveal_purpose`` (one of :func:`reveal_purposes`; None: the
    API without a ``purpose``, logged as quality control and saying so in ``detail``), ``fields``
    ``transcript`` and the kinds of identifiers the mask would have hidden (``phone``, ``full_name``,
    ``address``, ``email``; never the values). ``reveal_key``: the reveal form's one-time key — the
    same key again (a double click) logs nothing more (:func:`_first_use_of_reveal_key`). Raises
    :class:`CallError` 400 ``invalid_purpose`` for a purpose not offered for this call."""
    revealing = reveal and purpose == QA_PURPOSE
    if revealing and reveal_purpose is not None and reveal_purpose not in reveal_purposes(call):
        raise CallError(_l("цель раскрытия: одна из %(codes)s", codes=", ".join(reveal_purposes(call))),
                        code="invalid_purpose")
    erased = is_erased(call)
    if erased or call.recording_destroyed_at is not None:
        if commit:
            db.session.commit()
        return {**as_dict(call, transcript=[], removed="erased" if erased else "recording_destroyed"),
                "erased": erased}
    if not may_read(call, purpose):
        if commit:
            db.session.commit()
        return {**as_dict(call, transcript=[], withheld="no_consent"), "erased": erased}
    mask = masks_for(purpose, reveal)
    segments = presented_segments(call, mask=mask, detect=revealing)
    masked = any(seg.pop("masked") for seg in segments)
    found = {k for seg in segments for k in seg.pop("found", ())}
    if not pieces:
        for seg in segments:
            seg.pop("pieces")
    if segments and not revealing:
        audit.record("transcript.view", citizen_id=call.citizen_id, call_id=call.id, appeal_id=call.appeal_id,
                     fields=["transcript"], purpose=purpose)
    elif segments and _first_use_of_reveal_key(audit.current_actor().id, call.id, reveal_key):
        kinds = sorted(KIND_FIELDS[k] for k in found)
        shown = ", ".join(kinds) if kinds else "none found"
        audit.record("transcript.reveal", citizen_id=call.citizen_id, call_id=call.id, appeal_id=call.appeal_id,
                     fields=["transcript", *kinds], purpose=reveal_purpose or QA_PURPOSE,
                     detail=f"identifiers shown unmasked: {shown}"
                            + ("" if reveal_purpose else "; no purpose given (API default)"))
    if commit:
        db.session.commit()
    data = {**as_dict(call, transcript=segments), "erased": erased}
    if masked:
        data["transcript"]["masked"] = True
    return data


def _segment_dicts(segments) -> list[dict]:
    """``[{start, end, speaker, channel, text, words}]`` of stored :class:`Segment` rows, in order: what a
    recompute reads (:func:`stored_segments`) and what :func:`save_transcript` hands the ``call.transcribed``
    hook, so the checks computed after a transcription are those a recheck computes."""
    return [{"start": s.start, "end": s.end, "speaker": s.speaker, "channel": s.channel, "text": s.text,
             "words": s.words or []} for s in segments]


def stored_segments(call: Call, *, actor: audit.Actor, detail: str | None = None) -> list[dict] | None:
    """The call's stored transcript as a system task reads it to recompute from it (QA's ``crm qa
    recheck``): ``[{start, end, speaker, channel, text, words}]`` in order (seconds; ``text`` as stored,
    numbers in digits; ``words`` as Whisper gave them, ``[{start, end, word, probability}]``), unmasked,
    never shown to anyone. The read is logged as ``transcript.view`` for quality control by ``actor``
    (``detail`` says what for) and committed before this returns, whatever the caller does next.

    None, with nothing decrypted or logged, when the transcript may not be read for quality control:
    the citizen's data were erased (:func:`is_erased`), the recording and transcript destroyed
    (:func:`recording_destroyed`), or the call does not pass the QA-consent gate (:func:`may_read`).
    ``[]`` for a call with no segments (not transcribed, or no speech)."""
    if is_erased(call) or recording_destroyed(call) or not may_read(call, QA_PURPOSE):
        return None
    segments = _segment_dicts(call.segments)
    if segments:
        audit.record("transcript.view", citizen_id=call.citizen_id, call_id=call.id, appeal_id=call.appeal_id,
                     fields=["transcript"], purpose=QA_PURPOSE, actor=actor, detail=detail)
        db.session.commit()
    return segments


def ids_made_since(start: datetime | None = None) -> list[str]:
    """Ids of the calls made at or after ``start`` (aware UTC; None: every call), oldest first."""
    q = db.select(Call.id)
    if start is not None:
        q = q.where(Call.created_at >= start)
    return list(db.session.execute(q.order_by(Call.created_at, Call.id)).scalars())


def get(call_id: str) -> Call | None:
    return db.session.get(Call, call_id)


def transcribed(limit: int = 100) -> list[Call]:
    return list(db.session.execute(db.select(Call).order_by(Call.created_at.desc()).limit(limit)).scalars())


def activity_select():
    """``SELECT citizen_id, created_at`` of calls with a citizen (retention's last activity)."""
    return db.select(Call.citizen_id, Call.created_at).where(Call.citizen_id.isnot(None))


def count_recordings_before(before: datetime, live_citizens) -> int:
    """Calls made before ``before`` (aware UTC) whose citizen is in ``live_citizens`` (a ``SELECT
    id``, e.g. :func:`crm.citizens.services.live_ids_select`): recordings past their retention."""
    return db.session.execute(db.select(db.func.count()).select_from(Call).where(
        Call.created_at < before, Call.citizen_id.in_(live_citizens))).scalar_one()


def in_period(start: datetime, end: datetime, *, status: str | None = None) -> list[Call]:
    """Calls made in ``[start, end)`` (aware UTC), with ``status`` when given, ordered by id."""
    q = db.select(Call).where(Call.created_at >= start, Call.created_at < end)
    if status is not None:
        q = q.where(Call.status == status)
    return list(db.session.execute(q.order_by(Call.id)).scalars())


def ids_in_period_select(start: datetime, end: datetime, *, operator_id: int | None = None):
    """``SELECT id`` of the calls made in ``[start, end)`` (aware UTC), of ``operator_id`` when given:
    a statement to filter other tables by (e.g. QA's check results)."""
    q = db.select(Call.id).where(Call.created_at >= start, Call.created_at < end)
    if operator_id is not None:
        q = q.where(Call.operator_id == operator_id)
    return q


def move_to_appeal(from_appeal_id: str, to_appeal_id: str) -> int:
    """Re-attach every call of appeal ``from_appeal_id`` to ``to_appeal_id`` (a duplicate merged into its
    original, :func:`crm.appeals.services.mark_duplicate`), in the caller's transaction (no commit).
    Each call keeps its citizen and data keys: nothing is decrypted or re-encrypted. Returns how many moved."""
    moved = list(db.session.execute(db.select(Call).where(Call.appeal_id == from_appeal_id)).scalars())
    for call in moved:
        call.appeal_id = to_appeal_id
    return len(moved)


def for_appeal(appeal_id: str) -> list[Call]:
    return list(db.session.execute(db.select(Call).where(Call.appeal_id == appeal_id)
                                   .order_by(Call.created_at)).scalars())


def save_transcript(call: Call, result) -> list[dict]:
    """Replace the call's segments with ``result`` (a ``TranscriptResult``) and finish the call.
    Each segment's text is stored with its numbers written in digits
    (:func:`crm.calls.transcription.numbers.normalise`); its ``words`` keep what Whisper wrote.
    Returns the segments as stored (``[{start, end, speaker, channel, text, words}]``, the shape and
    values :func:`stored_segments` reads back, built in memory: nothing is decrypted again), for the
    ``call.transcribed`` hook: the automatic checks computed then must be those ``crm qa recheck``
    computes from the stored transcript (Whisper's raw text counts «семьдесят два» as two words, the
    stored «72» as one).
    The segments are encrypted under the call's own data key (:attr:`Call.speech_owner_id`), the
    recording's, which destroying the recording deletes: a copy of these rows in a backup then
    opens under no key left, while the citizen's key lives on (:func:`destroy_qa_recordings`)."""
    call.segments.clear()
    db.session.flush()
    for i, seg in enumerate(result.segments):
        s = Segment(call_id=call.id, owner_id=call.speech_owner_id, idx=i, start=seg["start"], end=seg["end"],
                    speaker=seg["speaker"], channel=seg.get("channel"))
        s.text = numbers.normalise(seg["text"])  # «дом 5, квартира 12», «8 916 123-45-67»; words stay raw
        s.words = seg.get("words") or []
        call.segments.append(s)
    stored = _segment_dicts(call.segments)
    set_status(call, result.status)
    call.language = result.language
    call.rtf = result.rtf
    call.duration_s = result.duration_s
    call.progress = 100.0
    call.error = call.error_code = None
    call.finished_at = utcnow()
    audit.record("transcript.create", citizen_id=call.citizen_id, call_id=call.id, appeal_id=call.appeal_id,
                 fields=["recording", "transcript"], purpose="call_recording_qa",
                 actor=audit.system_actor("transcribe_call"))
    db.session.commit()
    return stored


def fail(call: Call, code: str, message: str) -> None:
    """End the call's transcription ``failed`` with ``code`` and a Russian ``message``; logged, committed."""
    set_status(call, "failed")
    call.error_code = code
    call.error = message
    call.finished_at = utcnow()
    audit.record("transcript.fail", citizen_id=call.citizen_id, call_id=call.id, fields=["recording"],
                 purpose="call_recording_qa", outcome="failed", detail=code,
                 actor=audit.system_actor("transcribe_call"))
    db.session.commit()


def kpi_figures(start: datetime, end: datetime) -> dict:
    """Calls recorded in ``[start, end)`` (aware UTC), for crm.reports: ``calls_total`` and
    ``avg_call_duration_s`` (seconds, ``None`` without calls)."""
    total, avg = db.session.execute(
        select(func.count(), func.avg(Call.duration_s)).where(Call.created_at >= start, Call.created_at < end)).one()
    return {"calls_total": total, "avg_call_duration_s": round(float(avg), 1) if avg is not None else None}


# --- destroying the recordings kept for quality control ---------------------------------------------

DESTRUCTION_METHOD = ("crypto-shredding of each recording: the call's own AES-256-GCM data key, which encrypts the "
                      "recording, its transcript and the evaluation texts quoting it, deleted from the key store (its "
                      "backups expire within 30 days), so copies in main-database backups no longer decrypt; the "
                      "encrypted file deleted; transcript rows deleted from the main database; the appeal, the "
                      "call's statistics (duration, status) and QA scores kept")


def destroy_qa_recordings(citizen_id: str, *, actor: audit.Actor | None = None) -> DestructionRecord | None:
    """Destroy the recordings and transcripts of ``citizen_id``'s calls that were kept only for
    quality control, once the citizen withdrew the ``call_recording_qa`` consent (a withdrawal, or a
    refusal after a consent: an open withdrawal request of that purpose) and it is not in force
    again. 152-ФЗ ст. 21 ч. 5: destroyed within 30 days of the withdrawal.

    Kept: a recording that is the evidence of a consent, refusal or withdrawal
    (:func:`crm.consent.services.evidence_call_ids`; the controller must demonstrate consent, ст. 9
    ч. 3) — another legal basis than QA; the appeal and everything processed for it.

    In one transaction: the transcripts' rows and the uploads' original file names are deleted,
    ``recording_destroyed_at`` is set, a
    ``recording.destroy`` access-log entry per call and one :class:`DestructionRecord` (``scope``
    ``recordings``; whose, which categories, why, how, when, by whom; ``detail`` the call ids: no
    personal value) are written; committed. Then each file is deleted and the call's own data key
    (:attr:`Call.speech_owner_id`: the recording's, the transcript's and the evaluation texts') removed
    from the key store, so the transcript and evaluation texts in any backup of the main database
    no longer decrypt although the citizen's key lives on (a recording stored before migration 0018
    shared the citizen's key, which stays: :func:`rekey_recording` first gives each such recording
    the call's key; one not yet re-keyed loses its file alone), the record gets ``key_destroyed_at``, the
    withdrawal requests are closed with a destruction act (:func:`crm.consent.services.complete_withdrawal`)
    and ``call.erased`` is fired per call. Safe to run twice (a second run finds nothing and only
    finishes deleting files and keys of an interrupted one). Returns the record, or None when
    nothing was destroyed."""
    actor = actor or audit.system_actor("destroy_qa_recordings")
    finish_destroyed(citizen_id)
    if consent.qa_allowed(citizen_id) or not consent.open_withdrawals(citizen_id, QA_PURPOSE):
        return None
    rows = list(db.session.execute(db.select(Call).where(Call.citizen_id == citizen_id,
                                                         Call.recording_destroyed_at.is_(None))
                                   .order_by(Call.created_at, Call.id)).scalars())
    kept = consent.evidence_call_ids([c.id for c in rows])
    doomed = [c for c in rows if c.id not in kept]
    record = None
    if doomed:
        now = utcnow()
        for call in doomed:
            call.segments.clear()
            call.original_name_enc = None  # the upload's file name can name the citizen too
            call.recording_destroyed_at = now
            audit.record("recording.destroy", citizen_id=citizen_id, call_id=call.id, appeal_id=call.appeal_id,
                         fields=["recording", "transcript"], purpose=QA_PURPOSE, actor=actor,
                         detail="consent to call_recording_qa withdrawn")
        record = DestructionRecord(
            id=new_id(), citizen_id=citizen_id, scope="recordings", categories="recordings,transcripts",
            reason="согласие на запись звонков для контроля качества отозвано; записи, хранившиеся только для "
                   "контроля качества, уничтожены (152-ФЗ ст. 9 ч. 2, ст. 21 ч. 5)",
            method=DESTRUCTION_METHOD, at=now, actor_id=actor.id, actor=actor.name[:80], actor_role=actor.role[:20],
            detail=json.dumps({"calls": [c.id for c in doomed], "recordings": len(doomed),
                               "kept_as_consent_evidence": sorted(kept)}, sort_keys=True))
        db.session.add(record)
        db.session.commit()
        finish_destroyed(citizen_id)
        record = db.session.get(DestructionRecord, record.id)
    note = (f"согласие на запись для контроля качества отозвано: уничтожено записей и расшифровок — {len(doomed)}"
            + (f", сохранено как подтверждение согласия — {len(kept)}" if kept else "")
            + f"; исполнено автоматически {utcnow().date().isoformat()}")
    consent.complete_withdrawal(citizen_id, QA_PURPOSE, record, note=note, actor=actor)
    for call in doomed:
        hooks.fire("call.erased", call_id=call.id)
    return record


def finish_destroyed(citizen_id: str) -> int:
    """Delete the files and own data keys (:attr:`Call.speech_owner_id`: recording, transcript,
    evaluation texts) of the citizen's destroyed recordings still present (after
    :func:`destroy_qa_recordings` committed), stamp their destruction records. Returns how many
    files or keys were removed."""
    n = 0
    for call in db.session.execute(db.select(Call).where(Call.citizen_id == citizen_id,
                                                         Call.recording_destroyed_at.isnot(None))).scalars():
        path = recording_path(call)
        if path.exists():
            path.unlink()
            n += 1
        owners = {call.speech_owner_id, call.recording_owner_id} - {None, call.crypto_owner_id}
        for owner in sorted(owners):  # never the citizen's own key (their other data need it)
            n += keystore.delete_owner(owner)
            crypto.forget_cached_key(owner_id=owner)
    for rec in db.session.execute(db.select(DestructionRecord).where(
            DestructionRecord.citizen_id == citizen_id, DestructionRecord.scope == "recordings",
            DestructionRecord.key_destroyed_at.is_(None))).scalars():
        rec.key_destroyed_at = utcnow()
    db.session.commit()
    return n


def shared_key_recordings(limit: int = 100) -> list[str]:
    """Ids of calls whose recording is still encrypted under the citizen's data key (stored before
    migration 0018: ``recording_owner_id`` NULL), not destroyed, oldest first, at most ``limit``."""
    return list(db.session.execute(
        db.select(Call.id).where(Call.recording_owner_id.is_(None), Call.recording_destroyed_at.is_(None))
        .order_by(Call.created_at, Call.id).limit(limit)).scalars())


def rekey_recording(call_id: str) -> str:
    """Give the recording of ``call_id`` a data key of its own, as every recording stored since
    migration 0018 has, so that destroying it (:func:`destroy_qa_recordings`) deletes its key —
    crypto-shredding that also holds for copies of the file in backups — while the citizen's key,
    which the other recordings and data still need, stays.

    The file is decrypted in memory (:func:`crm.security.crypto.open_recording`) and encrypted under
    the call's own data key into a new file with a new storage key (mode 0600, flushed to disk);
    then ``storage_key`` and ``recording_owner_id`` are committed with a ``recording.rekey``
    access-log entry, and only then is the old file deleted. A process killed before the commit
    leaves the new file, which no row names (ciphertext, harmless); one killed between the commit and
    the deletion leaves the old file, which no row names either but which the citizen's key still
    opens: the entry's detail names its storage key, to delete it by hand. Safe to run twice. Returns ``"rekeyed"``, or why not: ``"own_key"`` (already), ``"gone"`` (no
    such call, its recording destroyed or the citizen erased), ``"missing"`` (no file)."""
    call = db.session.execute(db.select(Call).where(Call.id == call_id).with_for_update()).scalar_one_or_none()
    if call is None or call.recording_destroyed_at is not None or is_erased(call):
        db.session.rollback()
        return "gone"
    if call.recording_owner_id is not None:
        db.session.rollback()
        return "own_key"
    old = recording_path(call)
    if not old.exists():
        db.session.rollback()
        return "missing"
    old_key, new_key = call.storage_key, uuid.uuid4().hex
    new = _dir("CRM_RECORDINGS_DIR") / f"{new_key}.rec"
    try:
        with open(old, "rb") as src, crypto.open_recording(src, file_key=old_key, owner_id=call.recording_owner) as plain, \
                os.fdopen(os.open(new, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as dst:
            crypto.encrypt_stream(plain, dst, file_key=new_key, owner_id=call.id)
            dst.flush()
            os.fsync(dst.fileno())
    except BaseException:
        new.unlink(missing_ok=True)
        db.session.rollback()
        raise
    call.storage_key, call.recording_owner_id = new_key, call.id
    audit.record("recording.rekey", citizen_id=call.citizen_id, call_id=call.id, appeal_id=call.appeal_id,
                 actor=audit.system_actor("rekey_recordings"),
                 detail=f"recording re-encrypted under its own data key; storage {old_key} -> {new_key}")
    db.session.commit()
    old.unlink(missing_ok=True)
    return "rekeyed"


def recording_destroyed(call: Call) -> bool:
    """Whether the call's recording (and transcript) were destroyed."""
    return call.recording_destroyed_at is not None


def for_citizen(citizen_id: str) -> list[Call]:
    """The citizen's calls, newest first (nothing decrypted)."""
    return list(db.session.execute(db.select(Call).where(Call.citizen_id == citizen_id)
                                   .order_by(Call.created_at.desc())).scalars())
