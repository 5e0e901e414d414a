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


class ExecutorQuerySchema(Schema):
    kind = fields.String(load_default=None, validate=validate.OneOf(KINDS))
    topic = fields.String(load_default=None, validate=validate.Length(max=30))


class ExecutorSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    topics = fields.List(fields.String(), required=True)
    phone = nullable(fields.String, required=True)
    email = nullable(fields.String, required=True)
    address = nullable(fields.String, required=True)
    active = fields.Boolean(required=True)


class ExecutorListSchema(Schema):
    items = fields.List(fields.Nested(ExecutorSchema), required=True)
