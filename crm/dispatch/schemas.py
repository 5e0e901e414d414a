"""The dispatch resources of ``/api/v1``: breaches and notifications."""
from __future__ import annotations

from crm.api.schemas import IsoDateTime, Schema, fields, nullable


def _flag(description: str):
    return fields.Boolean(truthy={True, "true"}, falsy={False, "false"}, metadata={"description": description})


class BreachQuerySchema(Schema):
    acknowledged = _flag("false (default): the queue; true: acknowledged breaches")
    all = _flag("true: every breach, acknowledged or not")


class BreachSchema(Schema):
    """A breached clock cycle of an appeal on the supervisors' queue (no personal data)."""

    id = fields.Integer(required=True)
    appeal_id = fields.String(required=True)
    number = nullable(fields.String, required=True, metadata={"examples": ["2026-000042"]})
    status = nullable(fields.String, required=True, metadata={"description": "the appeal's status now"})
    executor_id = nullable(fields.Integer, required=True)
    clock = fields.String(required=True, metadata={"examples": ["handover", "emergency_localisation"]})
    cycle = fields.Integer(required=True, metadata={"description": "the clock's cycle (a re-opened appeal: 2, …)"})
    breached_at = IsoDateTime(required=True, metadata={"description": "when the clock ran out (UTC)"})
    escalated_at = IsoDateTime(required=True, metadata={"description": "when it was put on the queue (UTC)"})
    acknowledged_by = nullable(fields.Integer, required=True, metadata={"description": "the supervisor's user id"})
    acknowledged_at = nullable(IsoDateTime, required=True)


class BreachListSchema(Schema):
    items = fields.List(fields.Nested(BreachSchema), required=True)


class NotificationQuerySchema(Schema):
    unread = _flag("true: unread only")


class NotificationSchema(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True, metadata={"examples": ["breach", "warning", "assigned"]})
    text = fields.String(required=True, metadata={"description": "in the request's language"})
    params = fields.Dict(required=True, metadata={"description": "the values of the text (appeal number, clock code …)"})
    appeal_id = nullable(fields.String, required=True)
    created_at = IsoDateTime(required=True)
    read_at = nullable(IsoDateTime, required=True)


class NotificationListSchema(Schema):
    items = fields.List(fields.Nested(NotificationSchema), required=True)
    unread = fields.Integer(required=True, metadata={"description": "how many are unread"})
