"""The OpenAPI 3.1 document at ``/api/v1/openapi.json``, and :func:`check_body`, which checks a JSON
request body against the schema the document publishes for it (so the two cannot drift apart).

Roles are listed per operation in ``x-roles``; a test compares them with each handler's
``token_required(...)`` and every ``/api/v1`` route with the document's paths."""
from __future__ import annotations

from flask import jsonify

from crm.api import ApiError, bp, json_body
from crm.appeals.catalog import CATEGORIES, CHANNELS, DEADLINE_KINDS, STATUSES, TOPICS
from crm.calls.models import CALL_STATUSES
from crm.consent.services import CHANNELS as CONSENT_CHANNELS
from crm.consent.texts import PURPOSES
from crm.qa.services import ANSWERS

ROLES_OPERATOR = ["operator", "admin"]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(type_: str, **kw) -> dict:
    return {"type": [type_, "null"], **kw}


DATETIME = {"type": "string", "format": "date-time", "description": "ISO 8601 with offset (UTC)"}
DATETIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, dict] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string", "description": "machine code, e.g. invalid_phone, not_found"},
            "message": {"type": "string", "description": "for a person; Russian for validation errors"}}}},
    },
    "CitizenInput": {
        "type": "object", "required": ["full_name", "phone"],
        "properties": {
            "full_name": {"type": "string", "maxLength": 200},
            "phone": {"type": "string", "maxLength": 40,
                      "description": "a Russian number in any usual spelling (8 912 345-67-89, +7 (912) …)"},
            "email": _nullable("string", maxLength=200),
            "address": _nullable("string", maxLength=300),
            "apartment": _nullable("string", maxLength=20),
        },
    },
    "PhoneSearch": {
        "type": "object", "required": ["phone"],
        "properties": {"phone": {"type": "string", "maxLength": 40,
                                 "description": "a Russian number in any usual spelling (8 912 345-67-89, +7 (912) …)"}},
    },
    "AppealCreate": {
        "type": "object", "required": ["category", "topic", "description"],
        "description": "Exactly one of `citizen` and `citizen_id`. With `citizen`, an existing citizen with the "
                       "same phone and the same name (case and ё/е ignored) is reused, else one is registered.",
        "properties": {
            "citizen": _ref("CitizenInput"),
            "citizen_id": {"type": "string", "maxLength": 36},
            "category": {"type": "string", "enum": list(CATEGORIES)},
            "topic": {"type": "string", "enum": list(TOPICS), "description": "more codes may be added"},
            "description": {"type": "string", "maxLength": 10000},
            "channel": {"type": "string", "enum": list(CHANNELS), "default": "api"},
        },
    },
    "Sla": {
        "type": "object", "required": ["escalate_by", "update_by", "resolve_by", "breached"],
        "properties": {"escalate_by": DATETIME_OR_NULL, "update_by": DATETIME_OR_NULL,
                       "resolve_by": DATETIME_OR_NULL, "breached": {"type": "boolean"}},
    },
    "NextDeadline": {
        "type": "object", "required": ["kind", "due", "overdue", "soon"],
        "description": "The earliest SLA deadline the appeal still has to meet (deadlines already met are "
                       "skipped; an overdue one still pending comes first). escalate: hand over to an executor "
                       "(not for consultations); update: change the status (the clock restarts at every "
                       "transition); resolve: the category's resolution deadline.",
        "properties": {
            "kind": {"type": "string", "enum": list(DEADLINE_KINDS)},
            "due": {"type": "string", "format": "date-time", "description": "ISO 8601 in UTC (+00:00)"},
            "overdue": {"type": "boolean", "description": "due has passed"},
            "soon": {"type": "boolean", "description": "not overdue, and CRM_SLA_SOON_FRACTION (0.8 by default) of "
                                                       "the deadline's clock has run"},
        },
    },
    "AppealSummary": {
        "type": "object", "required": ["id", "number", "status", "citizen_id", "sla", "repeat_of", "next_deadline"],
        "properties": {
            "id": {"type": "string"}, "number": {"type": "string", "examples": ["2026-000042"]},
            "status": {"type": "string", "enum": list(STATUSES)}, "citizen_id": {"type": "string"},
            "category": {"type": "string"}, "topic": {"type": "string"}, "channel": {"type": "string"},
            "created_at": DATETIME, "sla": _ref("Sla"),
            "repeat_of": _nullable("string", description="id of the earlier appeal on the same problem"),
            "reopen_count": {"type": "integer"}, "operator_id": _nullable("integer"),
            "next_deadline": {"anyOf": [_ref("NextDeadline"), {"type": "null"}],
                              "description": "null when nothing is pending (closed, rejected, duplicate)"},
        },
    },
    "AppealCreated": {
        "allOf": [_ref("AppealSummary"), {"type": "object", "properties": {
            "possible_duplicates": {
                "type": "array", "items": {"type": "string"},
                "description": "When this request registered a new citizen (no existing citizen had the same phone "
                               "and name): the ids of the existing citizens with the same phone number, found "
                               "through the phone blind index (each look-up is in the access log as "
                               "citizen.search). Empty when none, or when an existing citizen was used "
                               "(`citizen_id`, or same phone and name). The citizen is registered all the same; "
                               "GET /citizens/{citizen_id} shows each one. Absent from the answer to a retried "
                               "request (same Idempotency-Key), which looks nobody up."},
        }}],
    },
    "Appeal": {
        "allOf": [_ref("AppealSummary"), {"type": "object", "properties": {
            "description": _nullable("string", description="null when the citizen's data were erased"),
            "citizen": _ref("CitizenCard"),
            "history": {"type": "array", "items": {"type": "object", "properties": {
                "at": DATETIME, "from": _nullable("string"), "to": {"type": "string"},
                "user_id": _nullable("integer"), "comment": _nullable("string")}}},
        }}],
    },
    "Transition": {
        "type": "object", "required": ["status"],
        "properties": {"status": {"type": "string", "enum": list(STATUSES)},
                       "comment": _nullable("string", maxLength=5000)},
    },
    "CitizenCard": {
        "type": "object", "required": ["id", "full_name", "phone", "masked", "erased"],
        "properties": {
            "id": {"type": "string"}, "full_name": {"type": "string"},
            "phone": _nullable("string", description="masked (+7 912 ***-**-89) unless revealed"),
            "email": _nullable("string"), "address": _nullable("string"), "apartment": _nullable("string"),
            "masked": {"type": "boolean"}, "erased": {"type": "boolean"},
        },
    },
    "CitizenList": {"type": "object", "required": ["items"],
                    "properties": {"items": {"type": "array", "items": _ref("CitizenCard")}}},
    "Segment": {
        "type": "object", "required": ["start", "end", "speaker", "text"],
        "properties": {"start": {"type": "number", "description": "seconds"}, "end": {"type": "number"},
                       "speaker": {"type": "string", "enum": ["operator", "citizen", "unknown"]},
                       "channel": _nullable("integer"), "text": {"type": "string"}},
    },
    "QaCheck": {
        "type": "object", "required": ["code", "passed", "detail"],
        "properties": {"code": {"type": "string", "enum": ["greeting", "closing"]},
                       "passed": {"type": "boolean"}, "detail": {"type": "string"}},
    },
    "Call": {
        "type": "object", "required": ["id", "status", "error"],
        "properties": {
            "id": {"type": "string"}, "status": {"type": "string", "enum": list(CALL_STATUSES)},
            "error": _nullable("string", description="Russian; why the upload, queueing or transcription failed"),
            "error_code": _nullable("string"), "appeal_id": _nullable("string"), "citizen_id": _nullable("string"),
            "operator_id": _nullable("integer"), "duration_s": _nullable("number"),
            "channels": _nullable("integer"), "sample_rate": _nullable("integer"), "language": _nullable("string"),
            "rtf": _nullable("number", description="real-time factor of the transcription"),
            "progress": {"type": "number", "description": "0–100"}, "created_at": DATETIME,
            "finished_at": DATETIME_OR_NULL,
            "transcript": {"type": "object", "description": "only in GET /calls/{id}",
                           "properties": {"segments": {"type": "array", "items": _ref("Segment")}}},
            "qa_checks": {"type": "array", "items": _ref("QaCheck"),
                          "description": "automatic checks once the status is done or no_speech; [] before"},
        },
    },
    "CallSearchHit": {
        "type": "object",
        "required": ["call_id", "call_at", "speaker", "start", "end", "segment_start", "segment_end", "exact",
                     "snippet", "highlight"],
        "properties": {
            "call_id": {"type": "string"}, "call_at": DATETIME, "appeal_id": _nullable("string"),
            "operator_id": _nullable("integer"), "operator_name": _nullable("string"),
            "speaker": {"type": "string", "enum": ["operator", "citizen", "unknown"]},
            "start": {"type": "number", "description": "seconds into the recording where the matched words start "
                                                       "(the segment's start when exact is false)"},
            "end": {"type": "number", "description": "seconds; where the matched words end"},
            "segment_start": {"type": "number", "description": "seconds"},
            "segment_end": {"type": "number", "description": "seconds"},
            "exact": {"type": "boolean", "description": "start/end come from word timestamps"},
            "snippet": {"type": "string", "description": "the segment's text around the match, «…» where cut"},
            "highlight": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2,
                          "description": "[a, b): character offsets of the match in snippet"},
        },
    },
    "CallSearchResult": {
        "type": "object",
        "required": ["query", "items", "calls_scanned", "calls_matched", "calls_skipped_no_consent", "max_calls",
                     "scan_limit_reached", "hit_limit_reached", "scanned_back_to"],
        "properties": {
            "query": {"type": "object", "properties": {
                "q": {"type": "string"}, "start": DATETIME, "end": DATETIME,
                "speaker": _nullable("string"), "operator_id": _nullable("integer"), "limit": {"type": "integer"}}},
            "items": {"type": "array", "items": _ref("CallSearchHit"), "description": "newest call first"},
            "calls_scanned": {"type": "integer", "description": "calls whose transcripts were read (each logged)"},
            "calls_matched": {"type": "integer"},
            "calls_skipped_no_consent": {"type": "integer", "description": (
                "calls in the period not read: the citizen has no active call_recording_qa consent, or none is "
                "linked")},
            "calls_unreadable": {"type": "integer", "description": "transcripts that failed to decrypt"},
            "max_calls": {"type": "integer", "description": "transcripts one search reads at most "
                                                             "(CRM_CALL_SEARCH_MAX_CALLS)"},
            "scan_limit_reached": {"type": "boolean", "description": (
                "max_calls were read and older calls of the period were not: narrow the period")},
            "hit_limit_reached": {"type": "boolean", "description": "limit hits found; the scan stopped there"},
            "scanned_back_to": {**DATETIME_OR_NULL, "description": "time of the oldest call read"},
        },
    },
    "CallUpload": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "contentMediaType": "application/octet-stream",
                                "description": "the recording (WAV, MP3, OGG, FLAC, AMR, GSM …; sniffed by content)"},
                       "appeal_id": {"type": "string"}},
    },
    "EvaluationCreate": {
        "type": "object", "required": ["answers"],
        "properties": {"answers": {"type": "object", "description": "criterion code → answer; every criterion of "
                                   "the active scorecard (greeting, problem_identified, correct_information, "
                                   "politeness, closing by default)",
                                   "additionalProperties": {"type": "string", "enum": list(ANSWERS)}},
                       "comment": _nullable("string", maxLength=5000)},
    },
    "Evaluation": {
        "type": "object", "required": ["id", "call_id", "score"],
        "properties": {"id": {"type": "string"}, "call_id": {"type": "string"}, "scorecard_id": {"type": "integer"},
                       "evaluator_id": {"type": "integer"}, "operator_id": _nullable("integer"),
                       "answers": {"type": "object", "additionalProperties": {"type": "string"}},
                       "score": {"type": "number", "description": "0–100; 0 when a critical criterion is no"},
                       "created_at": DATETIME},
    },
    "ConsentCreate": {
        "type": "object", "required": ["purpose"],
        "properties": {
            "purpose": {"type": "string", "enum": [p[0] for p in PURPOSES]},
            "text_version": _nullable("string", maxLength=40, description="default: the current text of the purpose"),
            "channel": {"type": "string", "enum": list(CONSENT_CHANNELS), "default": "call"},
            "given": {"type": "boolean", "default": True, "description": "false records an explicit refusal"},
            "evidence_call_id": _nullable("string", maxLength=36, description="the call in which it was given"),
            "evidence_offset_s": _nullable("number", description="seconds into that call's recording"),
        },
    },
    "ConsentWithdraw": {
        "type": "object",
        "properties": {"channel": {"type": "string", "enum": list(CONSENT_CHANNELS), "default": "api"}},
    },
    "Consent": {
        "type": "object", "required": ["id", "citizen_id", "purpose", "status"],
        "properties": {"id": {"type": "string"}, "citizen_id": {"type": "string"}, "purpose": {"type": "string"},
                       "text_version": {"type": "string"},
                       "text_hash": {"type": "string", "description": "SHA-256 of the exact consent text"},
                       "channel": {"type": "string"},
                       "status": {"type": "string", "enum": ["active", "withdrawn", "refused"]},
                       "at": DATETIME, "withdrawn_at": DATETIME_OR_NULL, "evidence_call_id": _nullable("string")},
    },
    "ConsentList": {"type": "object", "required": ["items"],
                    "properties": {"items": {"type": "array", "items": _ref("Consent")}}},
    "AuditEntry": {
        "type": "object",
        "properties": {"seq": {"type": "integer"}, "at": DATETIME, "actor_id": _nullable("integer"),
                       "actor": {"type": "string"}, "actor_role": {"type": "string"}, "action": {"type": "string"},
                       "citizen_id": _nullable("string"),
                       "fields": {"type": "array", "items": {"type": "string"},
                                  "description": "field categories, never values"},
                       "purpose": _nullable("string"), "appeal_id": _nullable("string"),
                       "call_id": _nullable("string"), "ip": _nullable("string"), "user_agent": _nullable("string"),
                       "outcome": {"type": "string"}, "detail": _nullable("string"),
                       "prev_hash": {"type": "string"}, "hash": {"type": "string"}},
    },
    "AuditPage": {
        "type": "object", "required": ["items", "next_before_seq"],
        "properties": {"items": {"type": "array", "items": _ref("AuditEntry")},
                       "next_before_seq": _nullable("integer", description="pass as before_seq for the next page")},
    },
    "Kpi": {
        "type": "object",
        "required": ["from", "to", "appeals_total", "by_category", "by_topic", "repeat_rate", "sla_compliance",
                     "csat_avg", "qa_score_avg"],
        "properties": {
            "from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"},
            "timezone": {"type": "string", "examples": ["Europe/Moscow"]},
            "appeals_total": {"type": "integer", "description": "appeals received in the period"},
            "by_category": {"type": "object", "additionalProperties": {"type": "integer"}},
            "by_topic": {"type": "object", "additionalProperties": {"type": "integer"}},
            "repeats": {"type": "integer"},
            "repeat_rate": _nullable("number", description="repeats / appeals_total (0–1); null without appeals"),
            "sla_compliance": _nullable("number", description=(
                "share (0–1) of the period's appeals, rejected and duplicates left out, resolved by their "
                "resolve_by or still open and not past it; null without such appeals")),
            "avg_time_to_resolve_h": _nullable("number", description="hours from receipt to resolution"),
            "csat_avg": _nullable("number", description="null: no CSAT data are collected yet"),
            "calls_total": {"type": "integer"},
            "avg_call_duration_s": _nullable("number"),
            "evaluations_total": {"type": "integer"},
            "qa_score_avg": _nullable("number", description="mean evaluation score (0–100) in the period"),
        },
    },
    "TelephonyEvent": {
        "type": "object", "required": ["event_id", "type"],
        "properties": {"event_id": {"type": "string", "minLength": 1, "maxLength": 128},
                       "type": {"type": "string", "enum": ["call.started", "call.ended"]},
                       "call_id": _nullable("string", maxLength=128), "from": _nullable("string", maxLength=40)},
    },
    "TelephonyAck": {
        "type": "object", "required": ["accepted", "duplicate"],
        "properties": {"accepted": {"type": "boolean"}, "duplicate": {"type": "boolean"},
                       "event_id": {"type": "string"}},
    },
}


# --- the paths -------------------------------------------------------------------------------------

def _json(schema: str | dict, description: str = "OK") -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": _ref(schema) if isinstance(schema, str) else schema}}}


def _err(description: str) -> dict:
    return _json("Error", description)


def _op(summary: str, roles: list[str] | None, responses: dict, *, body: str | None = None,
        params: list[dict] | None = None, description: str | None = None, multipart: str | None = None,
        security: list | None = None) -> dict:
    op: dict = {"summary": summary, "responses": {str(k): v for k, v in responses.items()}}
    if description:
        op["description"] = description
    if roles is not None:
        op["x-roles"] = roles
        op["responses"].setdefault("401", _err("no, invalid or revoked bearer token"))
        op["responses"].setdefault("403", _err("the token's role may not do this"))
    if security is not None:
        op["security"] = security
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
        op["responses"].setdefault("400", _err("malformed JSON or an invalid field (Russian message)"))
    if multipart:
        op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": _ref(multipart)}}}
    return op


def _path_id(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, description: str, type_: str = "string", fmt: str | None = None) -> dict:
    schema = {"type": type_, **({"format": fmt} if fmt else {})}
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


NOT_FOUND = _err("unknown id")

PATHS = {
    "/openapi.json": {"get": _op("This document", None, {200: {"description": "OpenAPI 3.1 document"}},
                                 security=[])},
    "/appeals": {"post": _op(
        "Register an appeal", ROLES_OPERATOR,
        {201: _json("AppealCreated", "created (or, with a repeated Idempotency-Key, the appeal made the first "
                                     "time); `possible_duplicates` lists other citizens with the same phone"),
         404: _err("citizen_id unknown"), 409: _err("the citizen's data were erased (code erased)")},
        body="AppealCreate",
        params=[{"name": "Idempotency-Key", "in": "header", "required": False,
                 "schema": {"type": "string", "maxLength": 64},
                 "description": "a retried POST with the same key returns the same appeal"}],
        description="Sets the SLA clocks and `repeat_of` (same citizen or building and topic within the repeat "
                    "window). The description is not echoed back; GET /appeals/{id} returns it and logs the read. "
                    "A `citizen` whose phone already belongs to citizens of other names is registered as a new "
                    "citizen, and their ids are returned in `possible_duplicates` so the client can warn or "
                    "offer to use one of them (`citizen_id`) next time.")},
    "/appeals/{appeal_id}": {"get": _op(
        "An appeal with its citizen card (masked) and history; the read is logged", ["operator", "supervisor", "admin"],
        {200: _json("Appeal"), 404: NOT_FOUND}, params=[_path_id("appeal_id")])},
    "/appeals/{appeal_id}/transitions": {"post": _op(
        "Move an appeal along its lifecycle", ROLES_OPERATOR,
        {200: _json("AppealSummary"), 404: NOT_FOUND,
         409: _err("the lifecycle table does not allow this transition (code bad_transition)")},
        body="Transition", params=[_path_id("appeal_id")])},
    "/citizens": {"get": _op(
        "Find citizens by phone (any spelling); each match is logged. The number is in the URL: prefer "
        "POST /citizens/search", ROLES_OPERATOR,
        {200: _json("CitizenList"), 400: _err("not a valid Russian phone number (code invalid_phone)")},
        params=[{**_query("phone", "e.g. 8 912 345-67-89"), "required": True}])},
    "/citizens/search": {"post": _op(
        "Find citizens by phone, the number in the JSON body; each match is logged", ROLES_OPERATOR,
        {200: _json("CitizenList"), 400: _err("malformed JSON or not a valid Russian phone number "
                                              "(code invalid_json, invalid_phone)")},
        body="PhoneSearch",
        description="The same search and response as GET /citizens?phone=, but the number travels in the request "
                    "body, so it stays out of URLs and therefore out of web-server, proxy and gateway access logs "
                    "and browser history. Prefer this to GET /citizens?phone= (which is kept for compatibility).")},
    "/citizens/{citizen_id}": {"get": _op(
        "A citizen's card; phone and address masked unless reveal=true (logged as a reveal)", ROLES_OPERATOR,
        {200: _json("CitizenCard"), 404: NOT_FOUND},
        params=[_path_id("citizen_id"), _query("reveal", "true to show phone, e-mail and address", "boolean")])},
    "/citizens/{citizen_id}/consents": {
        "get": _op("The citizen's consent events", ["operator", "admin", "dpo"],
                   {200: _json("ConsentList"), 404: NOT_FOUND}, params=[_path_id("citizen_id")]),
        "post": _op("Record a consent (or a refusal)", ROLES_OPERATOR,
                    {201: _json("Consent"),
                     200: _json("Consent", "a consent for the same purpose and text version is already in force: "
                                           "it is returned and nothing new is recorded (idempotent)"),
                     404: _err("unknown citizen or evidence call"),
                     409: _err("the citizen's data were erased (code erased)")},
                    body="ConsentCreate", params=[_path_id("citizen_id")]),
    },
    "/consents/{consent_id}/withdraw": {"post": _op(
        "Withdraw a consent (idempotent: a second withdrawal keeps the first time)", ["operator", "admin", "dpo"],
        {200: _json("Consent", "status is withdrawn"), 404: NOT_FOUND,
         400: _err("malformed JSON or an unknown channel")},
        params=[_path_id("consent_id")],
        description="The body is optional: `{\"channel\": \"call\"}` when the citizen withdrew on the phone.")
        | {"requestBody": {"required": False,
                           "content": {"application/json": {"schema": _ref("ConsentWithdraw")}}}}},
    "/calls": {"post": _op(
        "Upload a call recording; it is validated, encrypted, stored and queued for transcription",
        ["operator", "supervisor", "admin"],
        {202: _json("Call", "queued"), 400: _err("no file, empty, not audio, damaged or too long; nothing stored"),
         404: _err("appeal_id unknown"), 413: _err("larger than MAX_CONTENT_LENGTH (200 MB by default)")},
        multipart="CallUpload")},
    "/calls/search": {"get": _op(
        "Search call transcripts for a phrase; every transcript read is logged", ["supervisor", "admin"],
        {200: _json("CallSearchResult"),
         400: _err("no phrase or one under 3 letters (q_required, q_too_short, q_too_long), a bad date "
                   "(invalid_start, invalid_end, invalid_period), speaker, operator_id or limit")},
        params=[{**_query("q", "the phrase: its words in a row within one segment, any word form, case and ё/е "
                               "ignored"), "required": True},
                _query("start", "first day YYYY-MM-DD (Europe/Moscow) or an ISO 8601 date-time; default 30 days "
                                "before end"),
                _query("end", "last day YYYY-MM-DD (inclusive) or an ISO 8601 date-time (exclusive); default now"),
                _query("speaker", "operator, citizen or unknown; default any"),
                _query("operator_id", "only this operator's calls", "integer"),
                _query("limit", "hits, 1–500, default 100", "integer")],
        description="Transcripts are encrypted, so calls of the period are decrypted newest first, at most "
                    "CRM_CALL_SEARCH_MAX_CALLS (500) per search; scan_limit_reached says the bound was hit. Only "
                    "calls whose citizen consents to call_recording_qa are read.")},
    "/calls/{call_id}": {"get": _op(
        "A call with its transcript and automatic QA checks; the transcript read is logged",
        ["supervisor", "admin", "operator"],
        {200: _json("Call"), 404: NOT_FOUND}, params=[_path_id("call_id")],
        description="Operators may read only calls they handled (else 403).")},
    "/calls/{call_id}/transcription": {"post": _op(
        "Run the call's transcription again; the request is logged", ["supervisor", "admin"],
        {202: _json("Call", "queued again"), 404: NOT_FOUND,
         409: _err("a transcription is already queued or running (code already_queued; a repeated POST queues "
                   "nothing), or the stored recording is gone (code recording_missing)"),
         503: _err("Redis is down and the call is queued or processing (code queue_unavailable)")},
        params=[_path_id("call_id")],
        description="No body. Status, progress and error are reset and the job is queued; the transcript in "
                    "place stays until the new one replaces it. Poll GET /calls/{id} for the result.")},
    "/calls/{call_id}/evaluations": {"post": _op(
        "Score a transcribed call against the active scorecard", ["supervisor", "admin"],
        {201: _json("Evaluation"), 404: NOT_FOUND, 409: _err("the call is not transcribed yet (code not_transcribed)")},
        body="EvaluationCreate", params=[_path_id("call_id")])},
    "/audit": {"get": _op(
        "The access log, newest first", ["dpo"],
        {200: _json("AuditPage"), 400: _err("a bad date, limit or before_seq")},
        params=[_query("citizen_id", "entries about this citizen"), _query("actor", "username or job:<name>"),
                _query("action", "e.g. citizen.view"),
                _query("from", "first day, YYYY-MM-DD (Europe/Moscow)", fmt="date"),
                _query("to", "last day, YYYY-MM-DD (Europe/Moscow), inclusive", fmt="date"),
                _query("limit", "1–500, default 100", "integer"),
                _query("before_seq", "entries with seq below this (paging)", "integer")])},
    "/reports/kpi": {"get": _op(
        "KPIs for a period of Europe/Moscow days", ["supervisor", "admin"],
        {200: _json("Kpi"), 400: _err("a bad date, or from after to")},
        params=[_query("from", "first day, YYYY-MM-DD; default 29 days before `to`", fmt="date"),
                _query("to", "last day, YYYY-MM-DD, inclusive; default today", fmt="date")])},
    "/telephony/events": {"post": _op(
        "PBX webhook: call.started / call.ended", None,
        {202: _json("TelephonyAck", "accepted"), 200: _json("TelephonyAck", "a replayed event_id (duplicate: true)"),
         400: _err("malformed JSON or an invalid field"), 401: _err("missing or wrong signature"),
         413: _err("body over 64 KiB"),
         503: _err("CRM_TELEPHONY_SECRET is not set (telephony_not_configured) or Redis is down")},
        body="TelephonyEvent", security=[{"telephonySignature": []}],
        description="Authenticated by `X-CRM-Signature: sha256=<hex>`, the HMAC-SHA256 of the raw body under "
                    "CRM_TELEPHONY_SECRET. Event ids are remembered in Redis for CRM_TELEPHONY_REPLAY_TTL_S "
                    "(7 days by default); a replay within that window is answered 200 with duplicate: true. "
                    "The event is validated, de-duplicated and logged; nothing else is stored yet.")},
}

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {"title": "ЖКХ hotline CRM", "version": "1",
             "description": "Errors are {\"error\": {\"code\", \"message\"}}. Dates and times are ISO 8601 with "
                            "offset (UTC); report days are Europe/Moscow days."},
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearer": []}],
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "token from `crm users token USERNAME`"},
            "telephonySignature": {"type": "apiKey", "in": "header", "name": "X-CRM-Signature",
                                   "description": "sha256=<hex HMAC-SHA256 of the raw body>"},
        },
        "schemas": SCHEMAS,
    },
    "paths": PATHS,
}


@bp.get("/openapi.json")
def openapi():
    return jsonify(DOCUMENT)


# --- request bodies --------------------------------------------------------------------------------

_TYPE_RU = {"string": "строкой", "object": "объектом", "boolean": "логическим значением (true/false)",
            "number": "числом", "integer": "целым числом", "array": "списком", "null": "null"}


def _is(value, type_: str) -> bool:
    if type_ == "null":
        return value is None
    if type_ == "boolean":
        return isinstance(value, bool)
    if type_ == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_ == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, {"string": str, "object": dict, "array": list}[type_])


def _check(value, schema: dict, path: str) -> None:
    if "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[1]]
    leaf = path.rsplit(".", 1)[-1] or "body"
    types = schema.get("type")
    if types:
        types = [types] if isinstance(types, str) else types
        if not any(_is(value, t) for t in types):
            raise ApiError(400, f"invalid_{leaf}", f"поле «{path}» должно быть {_TYPE_RU[types[0]]}")
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise ApiError(400, f"invalid_{leaf}", f"поле «{path}» длиннее {schema['maxLength']} символов")
        if len(value) < schema.get("minLength", 0):
            raise ApiError(400, f"invalid_{leaf}", f"поле «{path}» не может быть пустым")
    if isinstance(value, dict):
        for name in schema.get("required", ()):
            if value.get(name) is None:
                raise ApiError(400, f"invalid_{name}", f"укажите поле «{path + '.' if path else ''}{name}»")
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                _check(value[name], sub, f"{path}.{name}" if path else name)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, item in value.items():
                _check(item, extra, f"{path}.{name}" if path else name)


def check_body(schema_name: str) -> dict:
    """The request's JSON object, checked against ``components.schemas[schema_name]``: required
    fields, types and lengths. Value sets (category codes …) are left to the services, whose
    messages say what is wrong. Raises :class:`ApiError` 400 ``invalid_json`` / ``invalid_<field>``."""
    body = json_body()
    _check(body, SCHEMAS[schema_name], "")
    return body
