"""The executor resource of ``/api/v1``."""
from __future__ import annotations

from marshmallow import validate

from crm.api.schemas import Schema, fields, nullable
from crm.executors.models import KINDS


class ExecutorCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS),
                         metadata={"description": "АДС, управляющая организация, РСО или подрядчик"})
    topics = fields.List(fields.String(validate=validate.Length(min=1, max=30)), load_default=list,
                         metadata={"description": "appeal topic codes served (empty: any)"})
    phone = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40))
    email = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    address = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=300))
    building_ids = fields.List(fields.Integer(), load_default=list, metadata={
        "description": "ids of the buildings register (GET /buildings) the executor serves (empty: any)"})


class ExecutorQuerySchema(Schema):
    kind = fields.String(load_default=None, validate=validate.OneOf(KINDS))
    topic = fields.String(load_default=None, validate=validate.Length(max=30))


class ExecutorSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    topics = fields.List(fields.String(), required=True)
    building_ids = fields.List(fields.Integer(), required=True, metadata={"description": "empty: any building"})
    phone = nullable(fields.String, required=True)
    email = nullable(fields.String, required=True)
    address = nullable(fields.String, required=True)
    active = fields.Boolean(required=True)


class ExecutorListSchema(Schema):
    items = fields.List(fields.Nested(ExecutorSchema), required=True)


class SuggestionSchema(Schema):
    """An executor the appeal may be handed over to (crm.executors.services.suggest)."""

    executor = fields.Nested(ExecutorSchema, required=True)
    score = fields.Integer(required=True, metadata={"description": "higher first: +2 topic named, +2 building "
                                                                    "named, +1 АДС for an emergency"})
    reasons = fields.List(fields.String(validate=validate.OneOf(("topic", "building", "emergency"))), required=True)
    open_appeals = fields.Integer(required=True, metadata={"description": "appeals it has in hand (escalated, "
                                                                          "in progress): fewer first on a tie"})


class SuggestionListSchema(Schema):
    items = fields.List(fields.Nested(SuggestionSchema), required=True, metadata={"description": "best first"})
    suggested_id = fields.Integer(required=True, allow_none=True, metadata={
        "description": "the first item's executor (preselected on the appeal page); null when none serves it"})
