"""The citizen resource of ``/api/v1``: the card (masked unless revealed), the data to register one,
the phone search."""
from __future__ import annotations

from marshmallow import validate

from crm.api.schemas import ErrorBodySchema, Schema, StrictBoolean, fields, nullable

PHONE_HELP = "a Russian number in any usual spelling (8 912 345-67-89, +7 (912) …)"


class CitizenInputSchema(Schema):
    full_name = fields.String(required=True, validate=validate.Length(max=200))
    phone = fields.String(required=True, validate=validate.Length(max=40), metadata={"description": PHONE_HELP})
    email = nullable(fields.String, validate=validate.Length(max=200))
    address = nullable(fields.String, validate=validate.Length(max=300))
    apartment = nullable(fields.String, validate=validate.Length(max=20))


class CitizenRectifySchema(Schema):
    """The fields to correct (152-ФЗ ст. 21 ч. 2); a field left out keeps its value, null or "" clears
    e-mail, address or apartment."""

    full_name = fields.String(validate=validate.Length(min=2, max=200))
    phone = fields.String(validate=validate.Length(max=40), metadata={"description": PHONE_HELP})
    email = nullable(fields.String, validate=validate.Length(max=200))
    address = nullable(fields.String, validate=validate.Length(max=300))
    apartment = nullable(fields.String, validate=validate.Length(max=20))
    confirm_duplicate = StrictBoolean(metadata={
        "description": "true: correct the phone even though other citizens have it (a shared number); without it "
                       "such a correction is answered 409 phone_in_use"})


class RectifyConflictSchema(Schema):
    """A 409 of PATCH /citizens/{id}: ``error`` and, for code phone_in_use, the citizens who have the phone."""

    error = fields.Nested(ErrorBodySchema, required=True)
    citizen_ids = fields.List(fields.String(), metadata={
        "description": "the other citizens with this phone (the look-up logged as citizen.search)"})


class CitizenRectifiedSchema(Schema):
    """What a rectification changed: field names only, never values."""

    id = fields.String(required=True)
    changed = fields.List(fields.String(), required=True,
                          metadata={"description": "names of the fields changed; [] when nothing changed"})


class PhoneSearchSchema(Schema):
    phone = fields.String(required=True, validate=validate.Length(max=40), metadata={"description": PHONE_HELP})


class PhoneQuerySchema(Schema):
    phone = fields.String(required=True, metadata={"description": "e.g. 8 912 345-67-89"})


class RevealQuerySchema(Schema):
    reveal = fields.String(metadata={"description": "true to show phone, e-mail and address (logged as a reveal)"})


class CitizenCardSchema(Schema):
    """Masked (name, masked phone, address hidden) unless revealed; an erased citizen's card says so."""

    id = fields.String(required=True)
    full_name = fields.String(required=True)
    phone = nullable(fields.String, required=True, metadata={"description": "masked (+7 912 ***-**-89) unless revealed"})
    email = nullable(fields.String)
    address = nullable(fields.String)
    apartment = nullable(fields.String)
    masked = fields.Boolean(required=True)
    erased = fields.Boolean(required=True)


class CitizenListSchema(Schema):
    items = fields.List(fields.Nested(CitizenCardSchema), required=True)
