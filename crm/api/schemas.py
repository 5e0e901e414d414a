"""What every resource schema shares: the base :class:`Schema`, the ISO date-time field, the error
object, and the apispec plugin that documents a schema extending another as ``allOf``.

A resource's marshmallow schema is its one description: the request is loaded through it (types,
lengths, required fields), the response is dumped through it (fields it does not declare are not
sent), and the OpenAPI document is generated from it."""
from __future__ import annotations

from datetime import date, datetime

import marshmallow as ma
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls

from crm.db import INT_MAX, INT_MIN
from crm.timeutil import local_tz, out_of_range

fields = ma.fields


class Schema(ma.Schema):
    """Base of the API's schemas: unknown input keys are ignored (as before the schemas), and a
    subclass that sets ``Meta.extends`` to its parent schema is documented as
    ``allOf: [parent, {its own fields}]``."""

    class Meta:
        unknown = ma.EXCLUDE

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            _bound_integers(field)


def _bound_integers(field: ma.fields.Field) -> None:
    """Hold an integer field (or a list's integer items) without a range of its own to SQL
    ``INTEGER`` (crm.db.INT_MIN … INT_MAX): a larger number is a 400 ``invalid_<field>`` instead of
    PostgreSQL's "integer out of range" (a 500). Documented as the field's minimum and maximum.
    A field whose values may exceed it (a ``BIGINT`` column) sets ``metadata={"bigint": True}``."""
    if isinstance(field, ma.fields.List):
        _bound_integers(field.inner)
        return
    if (isinstance(field, ma.fields.Integer) and not field.metadata.get("bigint")
            and not any(isinstance(v, ma.validate.Range) for v in field.validators)):
        field.validators = [*field.validators, ma.validate.Range(min=INT_MIN, max=INT_MAX)]


class IsoDateTime(fields.DateTime):
    """An ISO 8601 date-time with offset; dumps ``datetime`` objects and the ISO strings the
    services already made alike."""

    def _serialize(self, value, attr, obj, **kwargs):
        if isinstance(value, str):
            return value
        return super()._serialize(value, attr, obj, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        """Loads as marshmallow does; a date-time without an offset is in ``CRM_TIMEZONE`` (it reached
        the UTC columns naive: a 500); years outside crm.timeutil.MIN_YEAR … MAX_YEAR are refused."""
        moment = super()._deserialize(value, attr, data, **kwargs)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=local_tz())
        if (err := out_of_range(moment)) is not None:
            raise ma.ValidationError(err.message)
        return moment


class IsoDate(fields.Date):
    """A ``YYYY-MM-DD`` day; dumps ``date`` objects and strings alike."""

    def _serialize(self, value, attr, obj, **kwargs):
        if isinstance(value, str) or (isinstance(value, date) and not isinstance(value, datetime)):
            return value if isinstance(value, str) else value.isoformat()
        return super()._serialize(value, attr, obj, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        """Loads as marshmallow does; years outside crm.timeutil.MIN_YEAR … MAX_YEAR are refused."""
        day = super()._deserialize(value, attr, data, **kwargs)
        if (err := out_of_range(day)) is not None:
            raise ma.ValidationError(err.message)
        return day


class StrictBoolean(fields.Boolean):
    """``true`` or ``false`` only (marshmallow's Boolean also takes "yes", 1 …)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def nullable(field_cls, *args, **kwargs):
    """A field that may be null (``type: [T, "null"]`` in the document)."""
    return field_cls(*args, allow_none=True, **kwargs)


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"description": "machine code, e.g. invalid_phone, not_found"})
    message = fields.String(required=True, metadata={"description": "for a person; Russian for validation errors"})
    field = fields.String(metadata={"description": "the input at fault, for invalid input"})


class ErrorSchema(Schema):
    """Every error answer: ``{"error": {"code", "message", "field"?}}``."""

    error = fields.Nested(ErrorBodySchema, required=True)


def schema_name(schema) -> str:
    """The component name of ``schema`` (class or instance): its class name without ``Schema``."""
    cls = resolve_schema_cls(schema)
    name = cls.__name__
    return name[:-6] if name.endswith("Schema") and len(name) > 6 else name


class SchemaPlugin(MarshmallowPlugin):
    """Names components after the class without ``Schema``; a schema with ``Meta.extends`` is
    ``allOf`` its parent and its own fields."""

    def __init__(self):
        super().__init__(schema_name_resolver=schema_name)

    def schema_helper(self, name, _, schema=None, **kwargs):
        full = super().schema_helper(name, _, schema=schema, **kwargs)
        cls = resolve_schema_cls(schema) if schema is not None else None
        parent = getattr(getattr(cls, "Meta", None), "extends", None)
        if full is None or parent is None:
            return full
        ref = self.converter.resolve_nested_schema(parent)
        inherited = set(parent._declared_fields)
        own = {k: v for k, v in full.get("properties", {}).items() if k not in inherited}
        part = {"type": "object", "properties": own}
        required = [k for k in full.get("required", ()) if k not in inherited]
        if required:
            part["required"] = required
        doc = {"allOf": [ref, part]}
        if full.get("description"):
            doc["description"] = full["description"]
        return doc
