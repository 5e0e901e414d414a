"""Tables of the consent package: the register of processing purposes, consent events, data subject
requests with their legal clocks, the self-service grants (signed links and SMS codes), the SMS
outbox, destruction acts and retention runs. None of them holds a personal value in clear except
``sms_outbox.body`` (texts with secrets and comments masked) and ``sms_outbox.to_masked`` (a masked
number or e-mail address), both cleared by erasure and retention; ``sms_outbox.body_enc`` is the
message's whole text sealed under the citizen's data key until it has left."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, CheckConstraint, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, false as sa_false
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import UTCDateTime, UUIDStr, db, new_id, utcnow
from crm.security.fields import Encrypted


class Purpose(db.Model):
    """A processing purpose with its legal basis (152-ФЗ ст. 6) and retention period: one row of the
    organisation's record of processing (ст. 18.1 ч. 1, ст. 22 ч. 3). ``retention_days`` counts from
    the end of the processing the purpose serves (for appeals: the citizen's last appeal)."""

    __tablename__ = "purposes"
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_ru: Mapped[str] = mapped_column(String(200))
    legal_basis: Mapped[str] = mapped_column(Text)
    requires_consent: Mapped[bool] = mapped_column(Boolean)
    data_categories: Mapped[str] = mapped_column(String(300), default="")
    retention_days: Mapped[int] = mapped_column(Integer, default=1825)
    subjects: Mapped[str] = mapped_column(String(300), default="")
    actions: Mapped[str] = mapped_column(Text, default="")
    processing_method: Mapped[str] = mapped_column(String(300), default="")
    recipients: Mapped[str] = mapped_column(Text, default="")
    retention_basis: Mapped[str] = mapped_column(Text, default="")
    retention_action: Mapped[str] = mapped_column(String(20), default="erase")  # erase | deidentify
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_by: Mapped[int | None] = mapped_column(Integer)


class PurposeChangeProposal(db.Model):
    """A change to the register that needs a second person (two-person rule): today switching a
    purpose's ``requires_consent`` off, which would let processing go on without anybody's consent.
    One DPO proposes (``proposed_by``), a different DPO approves or either rejects (``decided_by``);
    ``status`` ``pending`` → ``approved`` | ``rejected``. ``value`` is the proposed new value (JSON)."""

    __tablename__ = "purpose_change_proposals"
    id: Mapped[str] = mapped_column(UUIDStr, primary_key=True, default=new_id)
    purpose_code: Mapped[str] = mapped_column(ForeignKey("purposes.code"), index=True)
    field: Mapped[str] = mapped_column(String(40))
    value: Mapped[object] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    proposed_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __init__(self, **kwargs):
        super().__init__(**{"id": kwargs.pop("id", None) or new_id(), **kwargs})


class ConsentEvent(db.Model):
    """A consent given or refused. Append-only: withdrawal sets the ``withdrawn_*`` columns once
    (a trigger refuses any other change, see migration 0005), nothing is ever deleted by the app.

    ``text_hash`` is SHA-256 of the exact text the citizen agreed to: the version's wording
    (:mod:`crm.consent.texts`) with the controller's name and address as they were then
    (``controller_*``), so :func:`crm.consent.services.consent_text` re-renders and checks it.
    Evidence: ``evidence_call_id`` + ``evidence_offset_s`` (the moment in the call's recording),
    or ``evidence_ref`` (the registry number of a paper scan, or the self-service grant id)."""

    __tablename__ = "consent_events"
    id: Mapped[str] = mapped_column(UUIDStr, primary_key=True, default=new_id)
    citizen_id: Mapped[str] = mapped_column(ForeignKey("citizens.id"), index=True)
    purpose_code: Mapped[str] = mapped_column(ForeignKey("purposes.code"), index=True)
    text_version: Mapped[str] = mapped_column(String(40))
    text_hash: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(20))  # call, web, paper, api
    evidence_call_id: Mapped[str | None] = mapped_column(UUIDStr)
    evidence_offset_s: Mapped[float | None] = mapped_column(Float)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    given: Mapped[bool] = mapped_column(Boolean, default=True)  # False records an explicit refusal
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_channel: Mapped[str | None] = mapped_column(String(20))
    withdrawn_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    appeal_id: Mapped[str | None] = mapped_column(UUIDStr, index=True)
    evidence_kind: Mapped[str | None] = mapped_column(String(20))  # call, scan, web, api
    evidence_ref: Mapped[str | None] = mapped_column(String(200))
    controller_name: Mapped[str | None] = mapped_column(String(300))
    controller_address: Mapped[str | None] = mapped_column(String(300))
    withdrawn_call_id: Mapped[str | None] = mapped_column(UUIDStr)
    withdrawn_offset_s: Mapped[float | None] = mapped_column(Float)
    withdrawn_ref: Mapped[str | None] = mapped_column(String(200))

    @property
    def status(self) -> str:
        """``refused``, ``withdrawn``, ``expired`` or ``active``."""
        if not self.given:
            return "refused"
        if self.withdrawn_at:
            return "withdrawn"
        if self.expires_at is not None and self.expires_at <= utcnow():
            return "expired"
        return "active"


class DataSubjectRequest(db.Model):
    """A data subject request (запрос субъекта ПДн) and its legal clock.

    ``type``: ``withdrawal`` (consent withdrawn: destroy or de-identify within 30 days, ст. 21 ч. 5),
    ``stop_processing`` (ст. 21 ч. 5.1: 10 working days), ``access`` (ст. 14, ст. 20 ч. 1: 10
    working days), ``erasure`` (destruction at the subject's request or by the operator's decision,
    four-eyes). ``due_at`` is the legal deadline; ``extended_due_at`` the deadline after a reasoned
    notice (+5 working days, ст. 20 ч. 1 and ст. 21 ч. 5.1). For an erasure ``requested_by`` and
    ``approved_by`` must be two different people (a CHECK constraint as well as the service)."""

    __tablename__ = "data_subject_requests"
    __table_args__ = (CheckConstraint("approved_by IS NULL OR requested_by IS NULL OR approved_by <> requested_by",
                                      name="four_eyes"),
                      CheckConstraint("export_approved_by IS NULL OR verification_by IS NULL OR "
                                      "export_approved_by <> verification_by", name="export_four_eyes"))
    id: Mapped[str] = mapped_column(UUIDStr, primary_key=True, default=new_id)
    citizen_id: Mapped[str] = mapped_column(ForeignKey("citizens.id"), index=True)
    type: Mapped[str] = mapped_column(String(20), index=True)
    purpose_code: Mapped[str | None] = mapped_column(String(40))
    consent_id: Mapped[str | None] = mapped_column(UUIDStr)
    channel: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)  # what was asked, no personal values
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    extended_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    extension_reason: Mapped[str | None] = mapped_column(Text)
    extended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    extended_by: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)  # open, awaiting_approval, answered, rejected
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_by: Mapped[int | None] = mapped_column(Integer)
    answer_note: Mapped[str | None] = mapped_column(Text)
    export_sha256: Mapped[str | None] = mapped_column(String(64))
    export_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    requested_by: Mapped[int | None] = mapped_column(Integer)
    approved_by: Mapped[int | None] = mapped_column(Integer)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    destruction_record_id: Mapped[str | None] = mapped_column(UUIDStr)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[int | None] = mapped_column(Integer)
    # an access request (crm.consent.rights.verify_identity, approve_export, mark_delivered): how the
    # subject's identity was established (never a document number), the second DPO's approval, delivery
    verification_method: Mapped[str | None] = mapped_column(String(20))  # self_service_code | document
    verification_document: Mapped[str | None] = mapped_column(String(40))  # the kind of document seen
    verification_note: Mapped[str | None] = mapped_column(Text)
    verification_by: Mapped[int | None] = mapped_column(Integer)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verification_grant_id: Mapped[str | None] = mapped_column(UUIDStr)
    export_approved_by: Mapped[int | None] = mapped_column(Integer)
    export_approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivery_method: Mapped[str | None] = mapped_column(String(20))  # self_service | print
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_by: Mapped[int | None] = mapped_column(Integer)

    @property
    def deadline(self) -> datetime:
        """The deadline in force: the extended one if the term was extended."""
        return self.extended_due_at or self.due_at

    @property
    def closed(self) -> bool:
        return self.status in ("answered", "rejected")

    def overdue(self, now: datetime | None = None) -> bool:
        return not self.closed and (now or utcnow()) > self.deadline


class SelfServiceGrant(db.Model):
    """One way into the citizen's self-service page: a signed link (``kind='link'``; the token names
    this row's id and carries a random nonce of which only ``token_hash``, an HMAC, is kept) or a
    one-time SMS code (``kind='code'``; only ``code_hash``, an HMAC of the code, is kept). ``used_at`` set = the link or code was used and is refused from then on.
    ``scope``: the citizen ids the session may see (all registrations with the verified phone)."""

    __tablename__ = "selfservice_grants"
    id: Mapped[str] = mapped_column(UUIDStr, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(10))
    # NULL for a decoy: a code "sent" to a number nobody has (crm.consent.selfservice.request_code)
    citizen_id: Mapped[str | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    scope: Mapped[list] = mapped_column(JSON, default=list)
    code_hash: Mapped[str | None] = mapped_column(String(64))
    token_hash: Mapped[str | None] = mapped_column(String(64))  # HMAC of the link token's nonce
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # the hourly count of request_code (one citizen's codes, or the decoys: citizen_id IS NULL) reads
    # only the last hour of this index, however many grants the table holds (no timing oracle)
    __table_args__ = (Index("ix_selfservice_grants_recent_codes", "citizen_id", "kind", "created_at"),)


class SmsMessage(db.Model):
    """The outbox: every message to a citizen, SMS or e-mail (:mod:`crm.consent.sms`), with its
    delivery. ``to_masked`` is the recipient as operators see it (``+7 912 ***-**-89``,
    ``iv***@mail.ru``), ``body`` the text with any secret or citizen-facing comment masked; the full
    number or address is never stored. ``body_enc`` seals the whole text under the citizen's data
    key only until the message has left (a delivery job, a retry or a deferral past quiet hours needs
    it), then it is cleared. ``event_key`` (``appeal_event_id`` for the older status SMS) makes a
    notification idempotent: one message per event and channel.

    ``status``: ``logged`` (written to the outbox only: no transport is configured, nothing was
    sent), ``queued``, ``scheduled`` (deferred to ``scheduled_for``, the end of quiet hours),
    ``sending``, ``sent`` (the provider or SMTP server accepted it), ``delivered`` (the provider's
    callback), ``failed`` (final; ``last_error``), ``cancelled`` (no consent any more when it was due)."""

    __tablename__ = "sms_outbox"
    id: Mapped[str] = mapped_column(UUIDStr, primary_key=True, default=new_id)
    citizen_id: Mapped[str | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(40), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # status, registered, incident, code, link, survey
    appeal_id: Mapped[str | None] = mapped_column(UUIDStr, index=True)
    appeal_event_id: Mapped[str | None] = mapped_column(UUIDStr, unique=True)
    to_masked: Mapped[str | None] = mapped_column(String(80))
    body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    deidentified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    channel: Mapped[str] = mapped_column(String(10), default="sms", server_default="sms")
    subject: Mapped[str | None] = mapped_column(String(200))
    body_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    event_key: Mapped[str | None] = mapped_column(String(160), unique=True)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    provider: Mapped[str | None] = mapped_column(String(20))
    provider_message_id: Mapped[str | None] = mapped_column(String(100), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(String(300))
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    sealed_body = Encrypted("body_enc")

    def __init__(self, **kwargs):
        # the id goes first: the associated data of the sealed text names the row
        super().__init__(**{"id": kwargs.pop("id", None) or new_id(), **kwargs})

    @property
    def crypto_owner_id(self) -> str | None:
        return self.citizen_id


class DestructionAct(db.Model):
    """The act of destruction of personal data (Приказ Роскомнадзора от 28.10.2022 № 179, п. 3):
    the companion of :class:`crm.security.models.DestructionRecord` with what the act needs beyond
    it: number, the controller's name and address, the information system, legal basis, who
    requested and who approved. The subject is named by "other information relating to the person"
    (the citizen id and appeal numbers), so the act holds no personal value and outlives the data;
    it is kept at least 3 years (п. 4). A trigger refuses updates (migration 0005)."""

    __tablename__ = "destruction_acts"
    id: Mapped[str] = mapped_column(UUIDStr, primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(30), unique=True)
    destruction_record_id: Mapped[str] = mapped_column(ForeignKey("destruction_records.id"), unique=True)
    citizen_id: Mapped[str] = mapped_column(UUIDStr, index=True)
    request_id: Mapped[str | None] = mapped_column(UUIDStr)
    subject_ref: Mapped[str] = mapped_column(Text)
    controller_name: Mapped[str] = mapped_column(String(300))
    controller_address: Mapped[str] = mapped_column(String(300))
    information_system: Mapped[str] = mapped_column(String(300))
    categories: Mapped[str] = mapped_column(Text)  # Russian list of the destroyed categories
    reason: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(Text)
    destroyed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    requested_by_id: Mapped[int | None] = mapped_column(Integer)
    requested_by: Mapped[str] = mapped_column(String(200))
    approved_by_id: Mapped[int | None] = mapped_column(Integer)
    approved_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class RetentionRun(db.Model):
    """One run of the retention job (:mod:`crm.consent.retention`) and its report for the DPO:
    ``report`` = ``{"purposes": {code: {"found", "erased", "deidentified", "pending", "note"}},
    "erased_citizens": [ids], "acts": [numbers], "overdue_requests": [ids], "closed_requests": [ids]}``."""

    __tablename__ = "retention_runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(80))
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    erased: Mapped[int] = mapped_column(Integer, default=0)
    deidentified: Mapped[int] = mapped_column(Integer, default=0)
    pending: Mapped[int] = mapped_column(Integer, default=0)
    report: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
