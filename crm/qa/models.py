"""Quality assurance tables: versioned scorecards, evaluations and their revisions, automatic check
results, sampling rules and the review queue, calibration sessions.

Free text that may quote a call (evaluation comments, comments pinned to a moment of the call, an
operator's dispute and the supervisor's answer) is ciphertext under the call's data key, and all of
it lives in :class:`Evaluation`, so erasing a citizen (``crm.security.shredding``) clears it with the
evaluation. The other QA tables hold ids, codes, answers and numbers only.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import UTCDateTime, UUIDStr, db, new_id, utcnow
from crm.security.fields import Encrypted


class Scorecard(db.Model):
    """One version of a scorecard (оценочная форма). Versions of one form share ``family``; editing
    creates a new row with ``version + 1`` and deactivates the old one, so every evaluation keeps the
    version it was scored on (``Evaluation.scorecard_id``).

    ``sections``: ``[{code, title}]`` in display order. ``criteria``: ``[{code, label, weight,
    critical, section, kind, scale_max}]`` where ``kind`` is ``binary`` (answers yes / no / na) or
    ``scale`` (answers 0..``scale_max`` or na); rows written before sections existed lack
    ``section``/``kind`` and read as binary criteria of one section (see ``services.criteria_of``)."""

    __tablename__ = "scorecards"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    family: Mapped[str] = mapped_column(String(40), default="default", server_default="default", index=True)
    name: Mapped[str] = mapped_column(String(120))
    version: Mapped[int] = mapped_column(Integer, default=1)
    sections: Mapped[list | None] = mapped_column(JSON)
    criteria: Mapped[list] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Evaluation(db.Model):
    """A supervisor's evaluation (оценка) of a call, in its current revision.

    ``answers`` maps criterion code → ``yes``/``no``/``na`` (binary criteria) or an integer
    0..scale_max / ``na`` (scale criteria); ``score`` is 0–100. A score changed after a dispute
    raises ``revision`` and the replaced state is kept in :class:`EvaluationRevision`.

    The operator's side: ``operator_status`` is ``new`` → ``acknowledged`` or ``disputed`` →
    (supervisor) ``upheld`` or ``changed``; ``respond_by`` is when the operator's right to answer
    ends (``CRM_QA_DISPUTE_DAYS`` after the evaluation, fixed when it is made).

    Ciphertext (under the call's data key): ``comment``, ``notes`` (JSON list of ``{at_s, text,
    author_id}``, comments pinned to a moment of the call, seconds), ``dispute_reason``,
    ``resolution``."""

    __tablename__ = "evaluations"
    id: Mapped[str] = mapped_column(UUIDStr, primary_key=True, default=new_id)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    scorecard_id: Mapped[int] = mapped_column(ForeignKey("scorecards.id"))
    evaluator_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    owner_id: Mapped[str] = mapped_column(UUIDStr)
    answers: Mapped[dict] = mapped_column(JSON)
    score: Mapped[float] = mapped_column(Float)
    comment_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    revision: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    revised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notes_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    operator_status: Mapped[str] = mapped_column(String(20), default="new", server_default="new", index=True)
    respond_by: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disputed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispute_reason_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolution_enc: Mapped[bytes | None] = mapped_column(LargeBinary)

    comment = Encrypted("comment_enc")
    notes = Encrypted("notes_enc", kind="json")
    dispute_reason = Encrypted("dispute_reason_enc")
    resolution = Encrypted("resolution_enc")

    def __init__(self, **kwargs):
        super().__init__(**{"id": kwargs.pop("id", None) or new_id(), "owner_id": kwargs.pop("owner_id"), **kwargs})

    @property
    def crypto_owner_id(self) -> str:
        return self.owner_id


class EvaluationRevision(db.Model):
    """A replaced state of an evaluation: what revision ``revision`` said before a supervisor changed
    the score while resolving a dispute. Numbers and codes only."""

    __tablename__ = "qa_evaluation_revisions"
    __table_args__ = (UniqueConstraint("evaluation_id", "revision", name="uq_qa_evaluation_revisions_evaluation_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    evaluation_id: Mapped[str] = mapped_column(ForeignKey("evaluations.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    scorecard_id: Mapped[int] = mapped_column(ForeignKey("scorecards.id"))
    evaluator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    answers: Mapped[dict] = mapped_column(JSON)
    score: Mapped[float] = mapped_column(Float)
    made_at: Mapped[datetime] = mapped_column(UTCDateTime)
    replaced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    replaced_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class CheckResult(db.Model):
    """The result of one automatic check (``crm.qa.checks``) on a call's transcript. ``detail`` is a
    Russian sentence about the operator's speech (never the citizen's words); ``value`` the measured
    figure where there is one (seconds, words per minute, a share)."""

    __tablename__ = "qa_check_results"
    __table_args__ = (UniqueConstraint("call_id", "code", name="uq_qa_check_results_call_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(40), index=True)
    passed: Mapped[bool] = mapped_column(Boolean)
    #: ``passed``, ``failed`` or ``unsure`` (found only through doubtful words; ``passed`` is then
    #: False); NULL for results stored before migration 0039 (read as passed/failed).
    state: Mapped[str | None] = mapped_column(String(10))
    detail: Mapped[str] = mapped_column(Text, default="")
    value: Mapped[float | None] = mapped_column(Float)
    at_s: Mapped[float | None] = mapped_column(Float)  # where in the call, seconds (the first hit)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SamplingRule(db.Model):
    """A rule that puts calls into the review queue for a period (``day``, ``week``, ``month`` in
    ``CRM_TIMEZONE``). ``kind``: ``random_per_operator`` (params ``{n}``), ``complaint``,
    ``breached_appeal``, ``checks_failed`` (params ``{codes: [...]}``)."""

    __tablename__ = "qa_sampling_rules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(200))
    period: Mapped[str] = mapped_column(String(10), default="week")
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QueueItem(db.Model):
    """A call in a supervisor's review queue. A call enters the queue at most once (unique
    ``call_id``), so sampling a period again adds nothing. ``reasons``: the rule kinds that picked
    it; ``status``: ``pending`` → ``done`` (evaluated) or ``excluded`` (consent withdrawn since)."""

    __tablename__ = "qa_queue_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), unique=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("qa_sampling_rules.id"))
    reasons: Mapped[list] = mapped_column(JSON, default=list)
    period_key: Mapped[str] = mapped_column(String(20), index=True)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    evaluation_id: Mapped[str | None] = mapped_column(ForeignKey("evaluations.id", ondelete="SET NULL"))


class CalibrationSession(db.Model):
    """Several supervisors score the same call blind (калибровка); ``reference_id`` is the evaluator
    whose answers the others are compared with. ``participant_ids``: user ids. While ``open`` nobody
    sees anyone else's answers; the report is shown once it is ``closed``."""

    __tablename__ = "qa_calibration_sessions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    scorecard_id: Mapped[int] = mapped_column(ForeignKey("scorecards.id"))
    title: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reference_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    participant_ids: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CalibrationScore(db.Model):
    """One participant's answers in a calibration session (no free text)."""

    __tablename__ = "qa_calibration_scores"
    __table_args__ = (UniqueConstraint("session_id", "evaluator_id", name="uq_qa_calibration_scores_session_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("qa_calibration_sessions.id", ondelete="CASCADE"), index=True)
    evaluator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    answers: Mapped[dict] = mapped_column(JSON)
    score: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
