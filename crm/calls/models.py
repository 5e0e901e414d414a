from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.db import UTCDateTime, UUIDStr, db, new_id, utcnow
from crm.i18n import N_
from crm.security.fields import Encrypted

CALL_STATUSES = ("queued", "processing", "done", "no_speech", "failed")
STATUS_RU = {"queued": N_("в очереди"), "processing": N_("расшифровывается"), "done": N_("расшифрован"),
             "no_speech": N_("речи нет"), "failed": N_("ошибка")}


class Call(db.Model):
    """A call recording and its transcription state. The recording lives encrypted on disk under
    ``instance/recordings/<storage_key>``; the original file name is kept as data (pitfalls.md).

    ``recording_owner_id``: the data-key owner the recording is encrypted under — the call itself
    for recordings stored since migration 0018, so one recording can be crypto-shredded alone
    (:func:`crm.calls.services.destroy_qa_recordings`); NULL for older ones (the citizen's key).
    ``recording_destroyed_at``: when the recording and transcript were destroyed.

    **The call's own data key** (owner id: the call's id, :attr:`speech_owner_id`) encrypts
    everything that reproduces what was said: the recording (since 0018, or once re-keyed), the
    transcript (:class:`Segment`) and the evaluations' free texts that quote it (since 0027). It is
    deleted when the recording is destroyed, so every copy of those rows (a backup) becomes
    unreadable while the citizen's key, which their other data still need, stays."""

    __tablename__ = "calls"
    id: Mapped[str] = mapped_column(UUIDStr, primary_key=True, default=new_id)
    appeal_id: Mapped[str | None] = mapped_column(ForeignKey("appeals.id"), index=True)
    citizen_id: Mapped[str | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(40))
    original_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    storage_key: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    audio_format: Mapped[str | None] = mapped_column(String(40))
    duration_s: Mapped[float | None] = mapped_column(Float)
    channels: Mapped[int | None] = mapped_column(Integer)
    sample_rate: Mapped[int | None] = mapped_column(Integer)
    language: Mapped[str | None] = mapped_column(String(8))
    rtf: Mapped[float | None] = mapped_column(Float)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    job_id: Mapped[str | None] = mapped_column(String(64))
    #: What the transcription queued or running is for: ``appeal_processing`` (an upload's) or
    #: ``call_recording_qa`` (a supervisor's re-run, under the QA-consent gate); the reconciler
    #: re-queues a dead job with it (migration 0036).
    transcription_purpose: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recording_owner_id: Mapped[str | None] = mapped_column(UUIDStr)
    recording_destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    original_name = Encrypted("original_name_enc")
    segments: Mapped[list["Segment"]] = relationship(order_by="Segment.idx", cascade="all, delete-orphan")

    def __init__(self, **kwargs):
        super().__init__(**{"id": kwargs.pop("id", None) or new_id(), **kwargs})

    @property
    def crypto_owner_id(self) -> str:
        return self.citizen_id or self.id

    @property
    def speech_owner_id(self) -> str:
        """The data-key owner of the call's transcript and of the evaluation texts quoting it: the
        call itself (see the class docstring; shredded with the recording)."""
        return self.id

    @property
    def recording_owner(self) -> str:
        """The data-key owner of the recording file (see ``recording_owner_id``)."""
        return self.recording_owner_id or self.crypto_owner_id


class Segment(db.Model):
    """One transcript segment (реплика): seconds from the start of the call, speaker, channel, and
    the text and word timestamps as ciphertext under ``owner_id``'s data key: the call's own key
    (:attr:`Call.speech_owner_id`) since migration 0027; before it, the citizen's."""

    __tablename__ = "segments"
    id: Mapped[str] = mapped_column(UUIDStr, primary_key=True, default=new_id)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[str] = mapped_column(UUIDStr)
    idx: Mapped[int] = mapped_column(Integer)
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float] = mapped_column(Float)
    speaker: Mapped[str] = mapped_column(String(20))
    channel: Mapped[int | None] = mapped_column(Integer)
    text_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    words_enc: Mapped[bytes | None] = mapped_column(LargeBinary)

    text = Encrypted("text_enc")
    words = Encrypted("words_enc", kind="json")

    def __init__(self, **kwargs):
        super().__init__(**{"id": kwargs.pop("id", None) or new_id(), "owner_id": kwargs.pop("owner_id"), **kwargs})

    @property
    def crypto_owner_id(self) -> str:
        return self.owner_id
