"""The dispatch resources of ``/api/v1``: breaches and notifications."""
from __future__ import annotations

from marshmallow import validate

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


class CommentSchema(Schema):
    comment = fields.String(validate=validate.Length(max=5000), load_default=None, allow_none=True)


class RequiredCommentSchema(Schema):
    comment = fields.String(required=True, validate=validate.Length(min=3, max=5000))


class ExtensionCreateSchema(Schema):
    until = IsoDateTime(required=True, metadata={"description": "the new resolution deadline asked for (ISO 8601 "
                                                                 "with offset), later than resolve_by, at most 60 "
                                                                 "days after it"})
    reason = fields.String(required=True, validate=validate.Length(min=3, max=5000), metadata={
        "description": "why (kept in the appeal's history, encrypted like every comment)"})


class ExtensionDecisionSchema(Schema):
    approve = fields.Boolean(required=True)
    comment = fields.String(validate=validate.Length(max=5000), load_default=None, allow_none=True, metadata={
        "description": "required (3 characters or more) to reject"})


class ExtensionSchema(Schema):
    id = fields.Integer(required=True)
    appeal_id = fields.String(required=True)
    executor_id = nullable(fields.Integer, required=True)
    requested_by = nullable(fields.Integer, required=True)
    requested_at = IsoDateTime(required=True)
    until = IsoDateTime(required=True)
    previous_due = nullable(IsoDateTime, required=True, metadata={"description": "resolve_by when it was asked"})
    status = fields.String(required=True, validate=validate.OneOf(("pending", "approved", "rejected")))
    decided_by = nullable(fields.Integer, required=True)
    decided_at = nullable(IsoDateTime, required=True)


class ExtensionListSchema(Schema):
    items = fields.List(fields.Nested(ExtensionSchema), required=True)


class WorkAddressSchema(Schema):
    address = nullable(fields.String, required=True)
    apartment = nullable(fields.String, required=True)
    building = nullable(fields.String, required=True, metadata={"description": "the house of the buildings register"})


class ExecutorStatsSchema(Schema):
    """One executor's load and lateness (appeals counted on their current executor)."""

    executor_id = fields.Integer(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)
    active = fields.Boolean(required=True)
    open_appeals = fields.Integer(required=True, metadata={"description": "in its hands: escalated, in progress"})
    overdue = fields.Integer(required=True, metadata={"description": "of those, past their resolution deadline"})
    due_30d = fields.Integer(required=True, metadata={"description": "appeals whose resolution deadline fell in the "
                                                                     "last 30 days"})
    late_30d = fields.Integer(required=True, metadata={"description": "of those, not resolved by it"})
    late_share = nullable(fields.Float, required=True, metadata={"description": "late_30d / due_30d (0–1); null when "
                                                                                 "nothing was due"})


class ExecutorStatsListSchema(Schema):
    items = fields.List(fields.Nested(ExecutorStatsSchema), required=True)
