"""The consent resource of ``/api/v1`` (152-ФЗ ст. 9): record, list, withdraw."""
from __future__ import annotations

from marshmallow import validate

from crm.api.schemas import IsoDateTime, Schema, StrictBoolean, fields, nullable
from crm.consent.services import CHANNELS
from crm.consent.texts import PURPOSES

STATUSES = ("active", "withdrawn", "refused")


class ConsentCreateSchema(Schema):
    # value sets are checked by the service, whose messages say what is wrong; the document lists them
    purpose = fields.String(required=True, metadata={"enum": [p[0] for p in PURPOSES]})
    text_version = nullable(fields.String, validate=validate.Length(max=40),
                            metadata={"description": "default: the current text of the purpose"})
    channel = fields.String(metadata={"enum": list(CHANNELS), "default": "call"})
    given = StrictBoolean(metadata={"default": True, "description": "false records an explicit refusal"})
    evidence_call_id = nullable(fields.String, validate=validate.Length(max=36),
                                metadata={"description": "the call in which it was given"})
    evidence_offset_s = nullable(fields.Float, metadata={"description": "seconds into that call's recording"})


class ConsentWithdrawSchema(Schema):
    OPTIONAL_BODY = True  # no body: withdrawn through the API channel

    channel = fields.String(metadata={"enum": list(CHANNELS), "default": "api"})


class ConsentSchema(Schema):
    """A consent event: ids, purpose code, channel, times (no personal values)."""

    id = fields.String(required=True)
    citizen_id = fields.String(required=True)
    purpose = fields.String(required=True)
    text_version = fields.String()
    text_hash = fields.String(metadata={"description": "SHA-256 of the exact consent text"})
    channel = fields.String()
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    at = IsoDateTime()
    withdrawn_at = nullable(IsoDateTime)
    withdrawn_channel = nullable(fields.String)
    evidence_call_id = nullable(fields.String)
    evidence_offset_s = nullable(fields.Float)
    expires_at = nullable(IsoDateTime)
    appeal_id = nullable(fields.String)


class ConsentListSchema(Schema):
    items = fields.List(fields.Nested(ConsentSchema), required=True)
