"""The appeal resource of ``/api/v1``: what a client sends to register or move an appeal and what it
gets back (validation, serialisation and the OpenAPI document come from these schemas)."""
from __future__ import annotations

from marshmallow import pre_load, validate

from crm.api.schemas import ErrorBodySchema, IsoDateTime, Schema, StrictBoolean, fields, nullable
from crm.appeals.catalog import CATEGORIES, CHANNELS, DEADLINE_KINDS, STATUSES, TOPICS
from crm.buildings.schemas import BuildingSchema
from crm.citizens.schemas import CitizenCardSchema, CitizenInputSchema
from crm.clocks.deadlines import STATES, WARNING_LEVELS
from crm.notifications.schemas import CitizenNotificationSchema


class AppealCreateSchema(Schema):
    """Exactly one of `citizen` and `citizen_id`. With `citizen`, an existing citizen with the same phone
    and the same name (case and ё/е ignored) is reused; a phone that belongs to citizens of other names is
    answered 409 (phone_in_use) unless `confirm_duplicate` is true; else the citizen is registered."""

    citizen = fields.Nested(CitizenInputSchema)
    citizen_id = fields.String(validate=validate.Length(max=36))
    # value sets are checked by the service, whose messages say what is wrong; the document lists them
    category = fields.String(required=True, metadata={"enum": list(CATEGORIES)})
    topic = fields.String(required=True, metadata={"enum": list(TOPICS), "description": "more codes may be added"})
    description = fields.String(required=True, validate=validate.Length(max=10000))
    channel = fields.String(metadata={"enum": list(CHANNELS), "default": "api"})
    building_id = nullable(fields.Integer, metadata={
        "description": "the house in the buildings register (GET /buildings?q=); an unknown id is answered 400 "
                       "invalid_building_id"})
    repeat_of_id = fields.String(validate=validate.Length(max=36), metadata={
        "description": "link the new appeal as a repeat of this earlier one (one POST /appeals/repeat-candidates "
                       "offers: same topic, same citizen or house, open or recent); else `repeat_of` is found "
                       "automatically. A mismatch is answered 409 repeat_of_mismatch"})
    incident_id = nullable(fields.Integer, metadata={
        "description": "the open incident (POST /incidents, GET /incidents/active) the appeal is about: linked to it, "
                       "resolved when the incident is closed. Unknown: 400 invalid_incident_id; closed: 409 "
                       "incident_closed"})
    call_id = fields.String(validate=validate.Length(max=36), metadata={
        "description": "the citizen's call already stored (POST /calls with `citizen_id`) to attach to the appeal"})
    confirm_duplicate = StrictBoolean(metadata={
        "default": False,
        "description": "register `citizen` although citizens of other names have this phone (the operator form's "
                       "«Всё равно зарегистрировать»); without it such a request is answered 409 phone_in_use"})
    consents = fields.Dict(keys=fields.String(validate=validate.Length(max=64)), values=StrictBoolean(), metadata={
        "description": "the citizen's answers to the consent questions asked on the call, `{purpose code: given}` "
                       "(e.g. `{\"sms_notifications\": true, \"call_recording_qa\": false}`; purposes not asked are "
                       "left out), recorded with the appeal as the operator's form records them: an unknown purpose "
                       "refuses the whole request (400, nothing registered)",
        "examples": [{"sms_notifications": True, "call_recording_qa": False}]})


class SlaSchema(Schema):
    escalate_by = nullable(IsoDateTime, required=True)
    update_by = nullable(IsoDateTime, required=True)
    resolve_by = nullable(IsoDateTime, required=True)
    breached = fields.Boolean(required=True)


class NextDeadlineSchema(Schema):
    """The earliest SLA deadline the appeal still has to meet (deadlines already met are skipped; an overdue
    one still pending comes first). escalate: hand over to an executor (not for consultations); update: change
    the status (the clock restarts at every transition); resolve: the category's resolution deadline."""

    kind = fields.String(required=True, validate=validate.OneOf(DEADLINE_KINDS))
    due = IsoDateTime(required=True, metadata={"description": "ISO 8601 in UTC (+00:00)"})
    overdue = fields.Boolean(required=True, metadata={"description": "due has passed"})
    soon = fields.Boolean(required=True, metadata={
        "description": "not overdue, and CRM_SLA_SOON_FRACTION (0.8 by default) of the deadline's clock has run"})


class AppealSummarySchema(Schema):
    """An appeal without its description (nothing decrypted)."""

    id = fields.String(required=True)
    number = fields.String(required=True, metadata={"examples": ["2026-000042"]})
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    citizen_id = fields.String(required=True)
    category = fields.String()
    topic = fields.String()
    channel = fields.String()
    created_at = IsoDateTime()
    sla = fields.Nested(SlaSchema, required=True)
    repeat_of = nullable(fields.String, required=True,
                         metadata={"description": "id of the earlier appeal on the same problem"})
    reopen_count = fields.Integer(metadata={"description": "how many times the appeal was re-opened; each "
                                                           "re-opening starts a new resolution cycle"})
    first_contact = fields.Boolean(metadata={"description": (
        "closed at the first contact: answered on the call («консультация дана»), never escalated nor "
        "re-opened (first-contact resolution)")})
    duplicate_of = nullable(fields.String, metadata={"description": "status duplicate: the original appeal's id"})
    operator_id = nullable(fields.Integer)
    executor_id = nullable(fields.Integer, required=True, metadata={
        "description": "the executor (GET /executors) the appeal is handed over to; null: none"})
    next_deadline = nullable(fields.Nested, NextDeadlineSchema, required=True, metadata={
        "description": "null when nothing is pending (closed, rejected, duplicate)"})


class RecordedConsentSchema(Schema):
    id = fields.String(required=True)
    purpose = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": ["active", "refused", "withdrawn", "expired"]})


class AppealCreatedSchema(AppealSummarySchema):
    class Meta(AppealSummarySchema.Meta):
        extends = AppealSummarySchema

    incident_id = nullable(fields.Integer, metadata={"description": "the incident the appeal is linked to"})
    possible_duplicates = fields.List(fields.String(), metadata={
        "description": "Always empty now: a citizen with the same phone and another name is no longer registered "
                       "silently (409 phone_in_use lists them; `confirm_duplicate` registers after the client "
                       "has seen them). Kept for clients that read it. Absent "
                       "from the answer to a retried request (same Idempotency-Key), which looks nobody up."})
    consents = fields.List(fields.Nested(RecordedConsentSchema), metadata={
        "description": "when `consents` were sent: the consent events of the answers (a consent already in force "
                       "is that event); empty when they could not be recorded (see `consent_error`)"})
    consent_error = nullable(fields.String, metadata={
        "description": "when `consents` were sent: why the answers were not recorded (the controller's name and "
                       "address are not configured: no consent may be stored; the appeal is registered all the "
                       "same), else null"})


class HistoryEntrySchema(Schema):
    """One step of the appeal's history: who (user, the role they acted in), when (UTC), from → to, and
    the comment with its visibility."""

    at = IsoDateTime(metadata={"description": "ISO 8601 in UTC"})
    kind = fields.String(metadata={"enum": ["transition", "comment", "note", "extension_request", "extension",
                                            "extension_rejected"], "description": (
        "transition: a status change (from → to); comment: a comment alone (from = to: the status it was "
        "written in); note: an executor's progress report (a status update); extension_request, extension "
        "(approved: resolve_by moved), extension_rejected: an executor's request for more time and its decision")})
    from_ = nullable(fields.String, attribute="from", data_key="from")
    to = fields.String()
    user_id = nullable(fields.Integer)
    user = nullable(fields.String, metadata={"description": "the user's login name; null for the system"})
    role = nullable(fields.String, metadata={"description": "the role the user acted in (operator, supervisor, "
                                                            "admin, executor …); null for the system and old rows"})
    comment = nullable(fields.String)
    visibility = fields.String(metadata={"enum": ["internal", "citizen"]})
    moved_from = nullable(fields.String, metadata={
        "description": "the number of the merged duplicate this comment was moved from"})


class ClockSchema(Schema):
    """Where one SLA clock of the appeal stands (crm.clocks): its latest cycle, so a re-opened appeal is
    judged on the new cycle's deadline."""

    code = fields.String(required=True, metadata={"examples": ["handover", "status_update", "written_answer"]})
    due = nullable(IsoDateTime, required=True, metadata={
        "description": "ISO 8601 in UTC; null while the clock is paused with time left"})
    state = fields.String(required=True, validate=validate.OneOf(STATES))
    warning = nullable(fields.Integer, validate=validate.OneOf(WARNING_LEVELS), metadata={
        "description": "the warning reached: 50, 80 or 100 per cent of the cycle's time used (null below 50 % "
                       "and for a clock met)"})


class AppealSchema(AppealSummarySchema):
    """An appeal with its description, citizen card (masked unless revealed) and history."""

    class Meta(AppealSummarySchema.Meta):
        extends = AppealSummarySchema

    description = nullable(fields.String, metadata={"description": "null when the citizen's data were erased"})
    citizen = fields.Nested(CitizenCardSchema)
    building = nullable(fields.Nested, BuildingSchema, metadata={
        "description": "the house of the buildings register picked at intake; null when none was"})
    history = fields.List(fields.Nested(HistoryEntrySchema))
    incident_id = nullable(fields.Integer, metadata={
        "description": "the incident (GET /incidents/{id}) the appeal was opened about; null: none"})
    clocks = fields.List(fields.Nested(ClockSchema), metadata={
        "description": "the SLA clocks that apply to the appeal (category, topic, channel, CRM_CLOCK_REGIME)"})
    notifications = fields.List(fields.Nested(CitizenNotificationSchema), metadata={
        "description": "the messages to the citizen about this appeal (SMS, e-mail) with their delivery status, "
                       "oldest first (GET /appeals/{id} only)"})


class AppealCommentSchema(Schema):
    """A comment without a change of status."""

    text = fields.String(required=True, validate=validate.Length(min=3, max=5000), metadata={
        "description": "encrypted under the citizen's data key, like the description"})
    visibility = fields.String(validate=validate.OneOf(["internal", "citizen"]), metadata={
        "enum": ["internal", "citizen"], "default": "internal",
        "description": "internal: staff only; citizen: also shown to the citizen on their self-service page"})


class AppealCommentCreatedSchema(Schema):
    id = fields.String(required=True, metadata={"description": "the history row's id"})
    appeal_id = fields.String(required=True)
    visibility = fields.String(required=True)
    at = fields.DateTime(required=True, metadata={"description": "UTC"})


class TransitionSchema(Schema):
    """A step of the lifecycle (crm.appeals.catalog.TRANSITIONS). `to` is accepted as another name of
    `status`."""

    status = fields.String(required=True, metadata={"enum": list(STATUSES)})
    comment = nullable(fields.String, validate=validate.Length(max=5000), metadata={
        "description": "encrypted under the citizen's data key, like the description"})
    visibility = fields.String(metadata={"enum": ["internal", "citizen"], "default": "internal", "description": (
        "internal: staff only; citizen: also shown to the citizen on their self-service page")})
    expected_status = fields.String(metadata={"enum": list(STATUSES), "description": (
        "the status the client saw; when the appeal is no longer in it the transition is refused with 409 "
        "`stale` and nothing changes (a double click, or a page another operator has moved on since)")})
    duplicate_of = fields.String(validate=validate.Length(max=36), metadata={
        "description": "with status `duplicate`: the original appeal's id (POST /appeals/{id}/duplicate also "
                       "merges)"})

    @pre_load
    def _to_alias(self, data, **_):
        if isinstance(data, dict) and "to" in data and "status" not in data:
            data = {**data, "status": data["to"]}
            del data["to"]
        return data


class StaleSchema(Schema):
    """A 409 of a lifecycle step: code `stale` (the appeal has left `expected_status`; nothing was changed;
    `current_status` says where it is now) or `bad_transition` (the table does not allow the step)."""

    error = fields.Nested(ErrorBodySchema, required=True)
    current_status = fields.String(metadata={"enum": list(STATUSES), "description": "code stale: the status now"})
    expected_status = fields.String(metadata={"enum": list(STATUSES), "description": "code stale: the status sent"})


class DuplicateSchema(Schema):
    original_id = fields.String(required=True, validate=validate.Length(max=36), metadata={
        "description": "the original appeal (not itself a duplicate, rejected, nor this appeal)"})
    merge = StrictBoolean(metadata={"default": False, "description": (
        "true: the duplicate's calls and comments move to the original, and the citizen is told once")})
    expected_status = fields.String(metadata={"enum": list(STATUSES), "description": "as in /transitions"})
    comment = nullable(fields.String, validate=validate.Length(max=5000), metadata={
        "description": "an internal comment on the duplicate's closing step"})


class AssignSchema(Schema):
    executor_id = fields.Integer(required=True, metadata={"description": "an id of GET /executors"})


class PhoneInUseSchema(Schema):
    """A 409 of POST /appeals: ``error`` and, for code phone_in_use, the citizens who have the phone."""

    error = fields.Nested(ErrorBodySchema, required=True)
    citizen_ids = fields.List(fields.String(), metadata={
        "description": "the citizens with this phone (the look-up logged as citizen.search); send `citizen_id` to "
                       "use one, or `confirm_duplicate: true` to register the new citizen anyway"})
    duplicates = fields.List(fields.Nested(CitizenCardSchema), metadata={
        "description": "their masked cards, as the operator's form shows them (each logged as citizen.view)"})


def _flag(description: str):
    """A boolean of the query string (``true``/``false``) or of a JSON body (true/false)."""
    return fields.Boolean(truthy={True, "true"}, falsy={False, "false"}, metadata={"description": description})


class AppealListQuerySchema(Schema):
    """Filters of GET /appeals (and the body of POST /appeals/search). Repeat `status`, `category`, `topic`
    for several values."""

    q = fields.String(validate=validate.Length(max=200), metadata={
        "description": "an appeal number (2026-000042 or 2026-42), a phone in any spelling, or a surname / full "
                       "name and/or an address (the citizen's building); matched through blind indexes, nothing "
                       "decrypted. Prefer POST /appeals/search for a phone, name or address: a URL ends up in "
                       "proxies' and clients' logs"})
    status = fields.List(fields.String(), metadata={"items": {"enum": list(STATUSES)}})
    category = fields.List(fields.String(), metadata={"items": {"enum": list(CATEGORIES)}})
    topic = fields.List(fields.String())
    operator_id = fields.Integer()
    executor_id = fields.Integer(metadata={"description": "appeals handed over to this executor"})
    citizen_id = fields.String(validate=validate.Length(max=36))
    created_from = IsoDateTime(metadata={"description": "created at or after (ISO 8601 with offset)"})
    created_to = IsoDateTime(metadata={"description": "created before (ISO 8601 with offset)"})
    overdue = _flag("true: the nearest pending deadline has passed")
    due_soon = _flag("true: the nearest pending deadline is not past and falls within CRM_SEARCH_SOON_HOURS (24)")
    repeat = _flag("true: repeat appeals only; false: first appeals only")
    sort = fields.String(metadata={"enum": ["deadline", "created", "-created"], "default": "deadline",
                                   "description": "deadline: nearest pending deadline first (none pending: last); "
                                                  "created: oldest first; -created: newest first"})
    limit = fields.Integer(validate=validate.Range(1, 200), metadata={"default": 50})
    cursor = fields.String(validate=validate.Length(max=400), metadata={
        "description": "next_cursor of the previous page (opaque); keep the other parameters unchanged"})


class AppealListSchema(Schema):
    """A page of appeals (no descriptions: nothing decrypted)."""

    items = fields.List(fields.Nested(AppealSummarySchema), required=True)
    next_cursor = nullable(fields.String, required=True, metadata={
        "description": "pass as `cursor` for the next page; null on the last page"})
    total = fields.Integer(required=True, metadata={"description": "how many appeals the filters match (at most "
                                                                   "CRM_SEARCH_COUNT_CAP, 10 000: see total_capped)"})
    total_capped = fields.Boolean(metadata={"description": "true: more than `total` appeals match (the count "
                                                           "stopped at CRM_SEARCH_COUNT_CAP)"})


class RepeatQuerySchema(Schema):
    """What a new appeal is about, while the operator types it (the citizen's id, never a phone or name)."""

    citizen_id = fields.String(required=True, validate=validate.Length(max=36))
    topic = fields.String(required=True, metadata={"enum": list(TOPICS)})
    building_id = nullable(fields.Integer, metadata={"description": "the house picked from the buildings register"})
    address = nullable(fields.String, validate=validate.Length(max=300), metadata={
        "description": "the house as typed, when none was picked: matched to the register in any usual spelling"})
    limit = fields.Integer(validate=validate.Range(1, 50), metadata={"default": 10})


class RepeatCandidateSchema(Schema):
    id = fields.String(required=True)
    number = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    topic = fields.String(required=True)
    category = fields.String(required=True)
    created_at = IsoDateTime(required=True)
    open = fields.Boolean(required=True, metadata={"description": "still being worked on"})
    same_citizen = fields.Boolean(required=True)
    same_building = fields.Boolean(required=True)
    building_id = nullable(fields.Integer, required=True)


class RepeatCandidatesSchema(Schema):
    items = fields.List(fields.Nested(RepeatCandidateSchema), required=True)
    window_days = fields.Float(required=True, metadata={"description": "CRM_REPEAT_WINDOW_DAYS: how recent a closed "
                                                                         "appeal still counts"})
