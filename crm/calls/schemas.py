"""The call resources of ``/api/v1``: a call with its transcript, the upload, the transcript search and
the PBX webhook's event."""
from __future__ import annotations

from marshmallow import validate

from crm.api.schemas import IsoDateTime, Schema, fields, nullable
from crm.calls.models import CALL_STATUSES

SPEAKERS = ("operator", "citizen", "unknown")


class WordSchema(Schema):
    """A recognised word with its time and Whisper's probability; a word under a masked stretch is its
    label («[телефон]» …; the words of one stretch are one entry)."""

    start = fields.Float(required=True, metadata={"description": "seconds"})
    end = fields.Float(required=True, metadata={"description": "seconds"})
    word = fields.String(required=True, metadata={"description": "as recognised (numbers in words as said)"})
    p = nullable(fields.Float, required=True, metadata={
        "description": "probability 0–1; below CRM_WORD_UNSURE_P (0.5) the page marks the word as doubtful"})


class SegmentSchema(Schema):
    start = fields.Float(required=True, metadata={"description": "seconds"})
    end = fields.Float(required=True, metadata={"description": "seconds"})
    speaker = fields.String(required=True, validate=validate.OneOf(SPEAKERS))
    channel = nullable(fields.Integer)
    text = fields.String(required=True, metadata={
        "description": "numbers in digits («дом 5, квартира 12», «8 916 123-45-67»); for a QA reader (supervisor, "
                       "admin) the citizen's phone numbers, names, addresses and e-mail addresses are masked: "
                       "[телефон], [имя], [адрес], [e-mail] (unless reveal=true, logged as transcript.reveal)"})
    words = fields.List(fields.Nested(WordSchema), metadata={"description": "the segment's words, when recognised"})


class CallQuerySchema(Schema):
    reveal = fields.String(metadata={
        "description": "QA readers: true to show the citizen's identifiers in the transcript unmasked (logged as "
                       "transcript.reveal); the operator of the call always sees them"})
    purpose = fields.String(metadata={
        "description": "with reveal=true: why the identifiers are needed, logged with the reveal: call_recording_qa "
                       "(quality control: checking what the operator took down) or appeal_processing (work on the "
                       "call's appeal; only for a call tied to one); another value is refused (400 invalid_purpose). "
                       "Omitted: logged as call_recording_qa, noting that no purpose was given"})


class TranscriptSchema(Schema):
    segments = fields.List(fields.Nested(SegmentSchema))
    masked = fields.Boolean(metadata={
        "description": "present (true) when some of the citizen's identifiers in the segments are shown masked (a "
                       "QA reader without reveal=true)"})
    withheld = fields.String(validate=validate.OneOf(("no_consent",)), metadata={
        "description": "present when the transcript is not shown: no_consent — read for quality control "
                       "without the citizen's consent to call_recording_qa (segments is then empty)"})
    removed = fields.String(validate=validate.OneOf(("recording_destroyed", "erased")), metadata={
        "description": "present when the transcript no longer exists (segments is then empty): "
                       "recording_destroyed — destroyed with the recording after the citizen withdrew the "
                       "consent to call_recording_qa (its data key deleted); erased — the citizen's data were erased"})


class CallSchema(Schema):
    """A call; ``transcript`` only in GET /calls/{id} (the read is logged)."""

    id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(CALL_STATUSES))
    error = nullable(fields.String, required=True,
                     metadata={"description": "Russian; why the upload, queueing or transcription failed"})
    error_code = nullable(fields.String)
    appeal_id = nullable(fields.String)
    citizen_id = nullable(fields.String)
    operator_id = nullable(fields.Integer)
    duration_s = nullable(fields.Float)
    channels = nullable(fields.Integer)
    sample_rate = nullable(fields.Integer)
    language = nullable(fields.String)
    rtf = nullable(fields.Float, metadata={"description": "real-time factor of the transcription"})
    progress = fields.Float(metadata={"description": "0–100"})
    created_at = IsoDateTime()
    finished_at = nullable(IsoDateTime)
    recording_destroyed_at = IsoDateTime(metadata={
        "description": "present once the recording and transcript were destroyed (the citizen withdrew the "
                       "call_recording_qa consent; 152-ФЗ ст. 21 ч. 5)"})
    transcript = fields.Nested(TranscriptSchema, metadata={"description": "only in GET /calls/{id}"})
    erased = fields.Boolean(metadata={"description": "only in GET /calls/{id}: the citizen's data were destroyed "
                                                     "(erasure); the recording and transcript are gone"})


class CallDetailSchema(CallSchema):
    """A call with its transcript and the automatic QA checks."""

    class Meta(CallSchema.Meta):
        extends = CallSchema

    # by name: the checks and their codes belong to crm.qa, which stands above crm.calls
    qa_checks = fields.List(fields.Nested("QaCheckSchema"), metadata={
        "description": "automatic checks once the status is done or no_speech; [] before"})


class CallUploadSchema(Schema):
    file = fields.Raw(required=True, metadata={
        "type": "string", "contentMediaType": "application/octet-stream",
        "description": "the recording (WAV, MP3, OGG, FLAC, AMR, GSM …; sniffed by content)"})
    appeal_id = fields.String()
    citizen_id = fields.String(metadata={
        "description": "without `appeal_id`: the known caller whose call this is (the telephony's recording); the "
                       "operator's new appeal of that citizen then attaches it (`call_id` of POST /appeals)"})


class CallSearchQuerySchema(Schema):
    """The JSON body of POST /calls/search (never a query string: the phrase is personal data).
    Checked further by ``crm.calls.search.parse_args`` (codes q_required, q_too_short, invalid_*)."""

    q = fields.String(metadata={"description": "the phrase: its words in a row within one segment, any word form, "
                                               "case and ё/е ignored"})
    start = fields.String(metadata={"description": "first day YYYY-MM-DD (CRM_TIMEZONE) or an ISO 8601 date-time; "
                                                   "default 30 days before end"})
    end = fields.String(metadata={"description": "last day YYYY-MM-DD (inclusive) or an ISO 8601 date-time "
                                                 "(exclusive); default now"})
    speaker = fields.String(metadata={"description": "operator, citizen or unknown; default any"})
    operator_id = fields.Integer(metadata={"description": "only this operator's calls"})
    limit = fields.Integer(metadata={"description": "hits, 1–500, default 100"})


class CallSearchHitSchema(Schema):
    call_id = fields.String(required=True)
    call_at = IsoDateTime(required=True)
    appeal_id = nullable(fields.String)
    operator_id = nullable(fields.Integer)
    operator_name = nullable(fields.String)
    speaker = fields.String(required=True, validate=validate.OneOf(SPEAKERS))
    start = fields.Float(required=True, metadata={
        "description": "seconds into the recording where the matched words start (the segment's start when exact "
                       "is false)"})
    end = fields.Float(required=True, metadata={"description": "seconds; where the matched words end"})
    segment_start = fields.Float(required=True, metadata={"description": "seconds"})
    segment_end = fields.Float(required=True, metadata={"description": "seconds"})
    exact = fields.Boolean(required=True, metadata={"description": "start/end come from word timestamps"})
    snippet = fields.String(required=True, metadata={"description": "the segment's text around the match, «…» "
                                                                    "where cut"})
    highlight = fields.List(fields.Integer(), required=True, validate=validate.Length(equal=2), metadata={
        "description": "[a, b): character offsets of the match in snippet"})


class SearchQueryEchoSchema(Schema):
    q = fields.String()
    start = IsoDateTime()
    end = IsoDateTime()
    speaker = nullable(fields.String)
    operator_id = nullable(fields.Integer)
    limit = fields.Integer()


class CallSearchResultSchema(Schema):
    query = fields.Nested(SearchQueryEchoSchema, required=True)
    items = fields.List(fields.Nested(CallSearchHitSchema), required=True, metadata={"description": "newest call first"})
    calls_scanned = fields.Integer(required=True, metadata={"description": "calls whose transcripts were read "
                                                                           "(each logged)"})
    calls_matched = fields.Integer(required=True)
    calls_skipped_no_consent = fields.Integer(required=True, metadata={
        "description": "calls in the period not read: the citizen has no active call_recording_qa consent, or none "
                       "is linked"})
    calls_unreadable = fields.Integer(metadata={"description": "transcripts that failed to decrypt"})
    max_calls = fields.Integer(required=True, metadata={
        "description": "transcripts one search reads at most (CRM_CALL_SEARCH_MAX_CALLS)"})
    scan_limit_reached = fields.Boolean(required=True, metadata={
        "description": "max_calls were read and older calls of the period were not: narrow the period"})
    hit_limit_reached = fields.Boolean(required=True, metadata={
        "description": "limit hits found; the scan stopped there"})
    scanned_back_to = nullable(IsoDateTime, required=True, metadata={"description": "time of the oldest call read"})
