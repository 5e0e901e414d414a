"""The building resource of ``/api/v1``: the autocomplete query and its answer."""
from __future__ import annotations

from marshmallow import validate

from crm.api.schemas import Schema, fields, nullable


class BuildingQuerySchema(Schema):
    q = fields.String(load_default="", validate=validate.Length(max=200),
                      metadata={"description": "words of the address, any spelling («ленина 5 к2»)"})
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=50))


class BuildingSchema(Schema):
    id = fields.Integer(required=True)
    address = fields.String(required=True)
    fias_id = nullable(fields.String, required=True, metadata={"description": "ФИАС/ГАР object GUID"})
    entrances = nullable(fields.Integer, required=True)
    apartments = nullable(fields.Integer, required=True)


class BuildingListSchema(Schema):
    items = fields.List(fields.Nested(BuildingSchema), required=True)
