"""The access log as ``/api/v1/audit`` shows it to the data-protection officer."""
from __future__ import annotations

from crm.api.schemas import IsoDateTime, Schema, fields, nullable


class AuditQuerySchema(Schema):
    """Checked further by the handler (codes invalid_limit, invalid_before_seq, invalid_from, invalid_to)."""

    citizen_id = fields.String(metadata={"description": "entries about this citizen"})
    actor = fields.String(metadata={"description": "username or job:<name>"})
    action = fields.String(metadata={"description": "e.g. citizen.view"})
    from_ = fields.String(data_key="from", metadata={"format": "date",
                                                      "description": "first day, YYYY-MM-DD (CRM_TIMEZONE)"})
    to = fields.String(metadata={"format": "date", "description": "last day, YYYY-MM-DD (CRM_TIMEZONE), inclusive"})
    limit = fields.String(metadata={"description": "1–500, default 100"})
    before_seq = fields.String(metadata={"description": "entries with seq below this (paging)"})


class AuditEntrySchema(Schema):
    seq = fields.Integer(metadata={"bigint": True})  # access_log.seq is a BIGINT
    at = IsoDateTime()
    actor_id = nullable(fields.Integer)
    actor = fields.String()
    actor_role = fields.String()
    action = fields.String()
    citizen_id = nullable(fields.String)
    fields_ = fields.List(fields.String(), attribute="fields", data_key="fields",
                          metadata={"description": "field categories, never values"})
    purpose = nullable(fields.String)
    appeal_id = nullable(fields.String)
    call_id = nullable(fields.String)
    ip = nullable(fields.String)
    user_agent = nullable(fields.String)
    outcome = fields.String()
    detail = nullable(fields.String)
    prev_hash = fields.String()
    hash = fields.String()


class AuditPageSchema(Schema):
    items = fields.List(fields.Nested(AuditEntrySchema), required=True)
    next_before_seq = nullable(fields.Integer, required=True,
                               metadata={"bigint": True, "description": "pass as before_seq for the next page"})
