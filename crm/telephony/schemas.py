"""The telephony resources of ``/api/v1``: the PBX's event, a call record, the callback worklist, the
queue board, and the IVR's lookups."""
from __future__ import annotations

from marshmallow import validate

from crm.api.schemas import IsoDateTime, Schema, fields, nullable
from crm.telephony.models import STATES
from crm.telephony.services import ATTEMPT_OUTCOMES, EVENT_TYPES, LEGACY_TYPES


class TelephonyEventSchema(Schema):
    """Zammad's generic CTI event (``newCall``, ``answer``, ``hangup``), and ``recording``."""

    event_id = fields.String(required=True, validate=validate.Length(min=1, max=128),
                             metadata={"description": "unique per event; a replay is answered duplicate: true"})
    type = fields.String(required=True, metadata={"enum": list(EVENT_TYPES + LEGACY_TYPES), "description":
                         "call.started / call.ended: the first version's types, acknowledged, nothing built"})
    callId = nullable(fields.String, validate=validate.Length(min=1, max=250),
                      metadata={"description": "the PBX's id of the call (required but for the legacy types)"})
    call_id = nullable(fields.String, validate=validate.Length(max=250), metadata={"description": "legacy alias"})
    from_ = nullable(fields.String, data_key="from", validate=validate.Length(max=80))
    to = nullable(fields.String, validate=validate.Length(max=80))
    direction = nullable(fields.String, validate=validate.OneOf(("in", "out")))
    queue = nullable(fields.String, validate=validate.Length(max=80))
    user = fields.Raw(allow_none=True, metadata={"description": "the operator's user name (a list takes its first, "
                                                                "as Zammad's user[])", "type": ["string", "array"]})
    answeringNumber = nullable(fields.String, validate=validate.Length(max=80))
    cause = nullable(fields.String, validate=validate.Length(max=40),
                     metadata={"description": "hangup: normalClearing, cancel, noAnswer, busy, forwarded …"})
    at = nullable(fields.String, metadata={"description": "ISO 8601 with offset; more than CRM_TELEPHONY_WINDOW_S "
                                                          "(300 s) from now is refused 400 stale_event"})
    url = nullable(fields.String, validate=validate.Length(max=2000),
                   metadata={"description": "recording: where the CRM fetches the file (CRM_TELEPHONY_RECORDING_URLS)"})
    sha256 = nullable(fields.String, validate=validate.Regexp(r"^[0-9a-fA-F]{64}$"),
                      metadata={"description": "recording uploaded as multipart `file`: its SHA-256 (hex), so the "
                                               "signed event binds the file"})


class TelephonyAckSchema(Schema):
    accepted = fields.Boolean(required=True)
    duplicate = fields.Boolean(required=True)
    event_id = fields.String()
    callId = nullable(fields.String)
    state = nullable(fields.String, validate=validate.OneOf(STATES))


class TelephonyCallSchema(Schema):
    callId = fields.String(required=True)
    state = fields.String(required=True, validate=validate.OneOf(STATES))
    wait_s = nullable(fields.Float, required=True, metadata={"description": "seconds from offer to answer (or to the "
                                                                            "abandon; while waiting, until now)"})
    talk_s = nullable(fields.Float, required=True, metadata={"description": "seconds from answer to hang-up"})
    operator = nullable(fields.String, required=True, metadata={"description": "user name of who answered last"})
    direction = fields.String()
    queue = nullable(fields.String)
    queued_at = nullable(IsoDateTime)
    answered_at = nullable(IsoDateTime)
    ended_at = nullable(IsoDateTime)
    abandoned_after_s = nullable(fields.Float)
    transferred = fields.Boolean()
    cause = nullable(fields.String)
    citizen_id = nullable(fields.String)
    recording_call_id = nullable(fields.String, metadata={"description": "GET /calls/{id} of its recording"})
    callback_due_at = nullable(IsoDateTime)
    callback_done_at = nullable(IsoDateTime)
    callback_via = nullable(fields.String)
    appeal_ids = fields.List(fields.String(), metadata={"description": "appeals registered by the answering operator "
                                                                         "during the call (GET /appeals/{id})"})


class CallLogQuerySchema(Schema):
    """Filters of the caller log (GET /telephony/calls)."""

    date_from = fields.String(validate=validate.Length(max=10), metadata={
        "format": "date", "description": "offered on or after this day (YYYY-MM-DD, a day in CRM_TIMEZONE)"})
    date_to = fields.String(validate=validate.Length(max=10), metadata={
        "format": "date", "description": "offered on or before this day (YYYY-MM-DD, a day in CRM_TIMEZONE)"})
    state = fields.String(validate=validate.OneOf(STATES))
    queue = fields.String(validate=validate.Length(min=1, max=80))
    operator = fields.String(validate=validate.Length(min=1, max=80),
                             metadata={"description": "user name of who answered last"})
    direction = fields.String(validate=validate.OneOf(("in", "out")))
    limit = fields.Integer(validate=validate.Range(1, 200), metadata={"default": 50})
    cursor = fields.String(validate=validate.Length(max=400), metadata={
        "description": "next_cursor of the previous page (opaque); keep the other parameters unchanged"})


class CallLogSchema(Schema):
    """A page of the caller log: call records as GET /telephony/calls/{callId}, newest first; no number."""

    items = fields.List(fields.Nested(TelephonyCallSchema), required=True,
                        metadata={"description": "newest first (the offer's time)"})
    next_cursor = nullable(fields.String, required=True, metadata={
        "description": "pass as `cursor` for the next page; null on the last page"})
    total = fields.Integer(required=True, metadata={"description": "how many call records the filters match"})


class CallbackSchema(Schema):
    callId = fields.String(required=True)
    id = fields.String(required=True)
    queue = nullable(fields.String)
    abandoned_at = nullable(IsoDateTime)
    waited_s = nullable(fields.Float)
    due_at = nullable(IsoDateTime)
    overdue = fields.Boolean()
    callable = fields.Boolean(metadata={"description": "false: anonymous or not a Russian number"})
    citizen_id = nullable(fields.String)
    attempts = fields.Integer()
    last_outcome = nullable(fields.String)


class CallbackListSchema(Schema):
    items = fields.List(fields.Nested(CallbackSchema), required=True, metadata={"description": "earliest deadline first"})


class CallbackAttemptBodySchema(Schema):
    outcome = fields.String(required=True, validate=validate.OneOf(ATTEMPT_OUTCOMES))


class CallbackAttemptSchema(Schema):
    id = fields.Integer(required=True)
    outcome = fields.String(required=True)
    cleared = fields.Boolean(required=True)


class AgentSchema(Schema):
    user = fields.String(required=True)
    full_name = fields.String(metadata={"description": "the operator's full name (the user name when none)"})
    state = fields.String(required=True, validate=validate.OneOf(("talking", "available", "paused", "logged_off")))
    answered = fields.Integer()
    talk_s = fields.Float()


class SurgeIncidentSchema(Schema):
    building_id = fields.Integer(required=True)
    address = fields.String(required=True)
    topic = nullable(fields.String, metadata={"description": "topic code of the building's recent appeals"})
    callers = fields.Integer(metadata={"description": "different citizens of the building among the surge's callers"})
    appeals = fields.Integer(metadata={"description": "appeals on the topic at the building within the last hour"})
    proposal_id = nullable(fields.Integer, metadata={"description": "a pending appeal-surge proposal (crm.incidents)"})
    incident_id = nullable(fields.Integer, metadata={"description": "an open incident already covering the building"})
    text = fields.String(metadata={"description": "the suggestion as a Russian sentence"})
    url = fields.String(metadata={"description": "the incident form prefilled, the proposal, or the open incident"})
    link_text = fields.String()


class SurgeSchema(Schema):
    since = fields.String(metadata={"description": "start of the arrivals window (ISO 8601)"})
    waiting = fields.Integer(required=True)
    waiting_threshold = fields.Integer()
    arrivals = fields.Integer(required=True, metadata={"description": "inbound calls in the last window_min minutes"})
    window_min = fields.Float()
    usual = nullable(fields.Float, metadata={"description": "mean arrivals per window, same weekday and hour, "
                                                              "previous weeks; null: no history yet"})
    usual_weeks = fields.Integer()
    arrivals_threshold = fields.Integer()
    reasons = fields.List(fields.String(), metadata={"description": "waiting and/or arrivals"})
    text = fields.String(required=True, metadata={"description": "the Russian alert"})
    incidents = fields.List(fields.Nested(SurgeIncidentSchema))


class QueueBoardSchema(Schema):
    date = fields.String()
    waiting = fields.Integer(required=True)
    longest_wait_s = fields.Float(required=True)
    offered = fields.Integer()
    answered = fields.Integer()
    abandoned = fields.Integer(metadata={"description": "short abandons excluded"})
    short_abandons = fields.Integer()
    service_level = nullable(fields.Float, required=True, metadata={"description": "share answered within "
                                                                                   "service_level_s; null: none offered"})
    service_level_s = fields.Integer()
    service_level_target = fields.Float()
    asa_s = nullable(fields.Float, required=True)
    abandon_rate = nullable(fields.Float, required=True)
    answered_over_norm = fields.Integer(metadata={"description": "answered after more than 300 s (ПП РФ № 416)"})
    answered_over_norm_calls = fields.List(fields.String())
    emergency_norm_s = fields.Integer()
    callbacks_open = fields.Integer()
    agents = fields.List(fields.Nested(AgentSchema), required=True)
    surge = fields.Nested(SurgeSchema, allow_none=True, metadata={"description": "null: no surge"})


class IvrAppealQuerySchema(Schema):
    number = fields.String(validate=validate.Length(min=1, max=40))
    phone = fields.String(validate=validate.Length(min=1, max=40))


class IvrPhoneQuerySchema(Schema):
    phone = fields.String(required=True, validate=validate.Length(min=1, max=40))


class IvrAnswerSchema(Schema):
    text = fields.String(required=True, metadata={"description": "one or two Russian sentences for text-to-speech"})
    found = fields.Boolean()
