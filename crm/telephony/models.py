"""Telephony records: the PBX's events as received, the call record folded from them, callback
attempts and the agents' pause state. No phone number is stored in clear: the citizen's side of a
call is encrypted (``caller``) under the citizen's data key, or under the call record's own key
while the caller is unknown."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm.db import UTCDateTime, UUIDStr, db, new_id, utcnow
from crm.security.fields import Encrypted

#: Call states as the API names them.
STATES = ("waiting", "answered", "abandoned", "ended")


class TelephonyEvent(db.Model):
    """One PBX event as received (or imported from Asterisk's queue_log): ids, type, time and who;
    never the numbers. ``event_id`` is unique: a replay is recognised however late it comes."""

    __tablename__ = "telephony_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    source: Mapped[str | None] = mapped_column(String(40))
    pbx_call_id: Mapped[str] = mapped_column(String(250), index=True)
    type: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str | None] = mapped_column(String(3))
    queue: Mapped[str | None] = mapped_column(String(80))
    user: Mapped[str | None] = mapped_column(String(80))
    cause: Mapped[str | None] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TelephonyCall(db.Model):
    """A call as the PBX's events describe it (:func:`crm.telephony.services.fold`).

    ``owner_id``: the data-key owner of ``caller`` — the citizen found by the number when the record
    was made, else the record itself. ``caller``: the citizen's side (``from`` of an inbound call,
    ``to`` of an outbound one), E.164 when it is a valid Russian number (``caller_valid``), else as
    given (``anonymous``). ``line``: the hotline's side (its number or an extension)."""

    __tablename__ = "telephony_calls"
    id: Mapped[str] = mapped_column(UUIDStr, primary_key=True, default=new_id)
    pbx_call_id: Mapped[str] = mapped_column(String(250), unique=True)
    source: Mapped[str | None] = mapped_column(String(40))
    direction: Mapped[str] = mapped_column(String(3), default="in")
    queue: Mapped[str | None] = mapped_column(String(80), index=True)
    line: Mapped[str | None] = mapped_column(String(80))
    owner_id: Mapped[str] = mapped_column(UUIDStr)
    citizen_id: Mapped[str | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    caller_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    caller_valid: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(12), default="waiting", index=True)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    wait_s: Mapped[float | None] = mapped_column(Float)
    talk_s: Mapped[float | None] = mapped_column(Float)
    abandoned_after_s: Mapped[float | None] = mapped_column(Float)
    operator: Mapped[str | None] = mapped_column(String(80), index=True)
    operator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    transferred: Mapped[bool] = mapped_column(Boolean, default=False)
    cause: Mapped[str | None] = mapped_column(String(40))
    recording_call_id: Mapped[str | None] = mapped_column(ForeignKey("calls.id"), index=True)
    #: where the worker fetches the recording from (the ``recording`` event's ``url``), encrypted like
    #: ``caller`` (a PBX often names the file after the caller's number) and emptied once fetched or
    #: refused; the fetch job gets only the record's id, so the URL never sits in Redis (issue 13)
    recording_url_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    callback_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    callback_done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    callback_via: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    caller = Encrypted("caller_enc")
    recording_url = Encrypted("recording_url_enc")

    def __init__(self, **kwargs):
        super().__init__(**{"id": kwargs.pop("id", None) or new_id(), **kwargs})

    @property
    def crypto_owner_id(self) -> str:
        return self.owner_id


class CallbackAttempt(db.Model):
    """An operator's attempt to call an abandoned caller back (the worklist page), or the PBX's
    outbound call that did (``via`` = ``pbx``). ``outcome``: ``reached``, ``no_answer``, ``busy``,
    ``wrong_number``; a ``reached`` one (or any PBX call answered) clears the callback."""

    __tablename__ = "telephony_callback_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    telephony_call_id: Mapped[str] = mapped_column(ForeignKey("telephony_calls.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    via: Mapped[str] = mapped_column(String(20))
    outcome: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AgentState(db.Model):
    """An agent's pause state as the PBX reports it (queue_log PAUSE/UNPAUSE, ADDMEMBER/REMOVEMEMBER):
    ``paused`` or ``logged_off`` overrides "available" on the queue board."""

    __tablename__ = "telephony_agents"
    username: Mapped[str] = mapped_column(String(80), primary_key=True)
    state: Mapped[str] = mapped_column(String(20))
    since: Mapped[datetime] = mapped_column(UTCDateTime)


class TelephonyCallAppeal(db.Model):
    """An appeal registered during a call (issue 16, point 2): the operator who answered the call
    registered it while the call was still ``answered`` (the screen pop's intake, or any other intake
    of theirs). ``linked_at``: when the link was made (the appeal's registration)."""

    __tablename__ = "telephony_call_appeals"
    __table_args__ = (UniqueConstraint("telephony_call_id", "appeal_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    telephony_call_id: Mapped[str] = mapped_column(ForeignKey("telephony_calls.id", ondelete="CASCADE"), index=True)
    appeal_id: Mapped[str] = mapped_column(ForeignKey("appeals.id", ondelete="CASCADE"), index=True)
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
