"""The incident resource of ``/api/v1``: what a client sends to register, close or attach a call to an
incident and what it gets back (validation, serialisation and the OpenAPI document)."""
from __future__ import annotations

from marshmallow import validate

from crm.api.schemas import ErrorBodySchema, IsoDateTime, Schema, fields, nullable
from crm.incidents.catalog import KINDS, SCOPES, STATUSES, TOPICS


class IncidentCreateSchema(Schema):
    """Exactly one of `addresses`, `street` and `district`."""

    addresses = fields.List(fields.String(validate=validate.Length(max=300)), validate=validate.Length(max=500),
                            metadata={"description": "houses of the buildings register, any usual spelling "
                                                     "(«ул. Ленина, д. 5» = «Ленина 5»); an address not in the register "
                                                     "is answered 422 unknown_address and nothing is created"})
    street = fields.String(validate=validate.Length(max=300), metadata={
        "description": "instead of `addresses`: every house of this street («ул. Ленина»; matched as whole words "
                       "of the normalised address, so not «ул. Ленинская»)"})
    district = fields.String(validate=validate.Length(max=300), metadata={
        "description": "instead of `addresses`: every house whose address names this district or locality"})
    topic = fields.String(required=True, metadata={"enum": list(TOPICS), "description": "the appeals' topic codes"})
    kind = fields.String(metadata={"enum": list(KINDS), "default": "emergency"})
    starts_at = IsoDateTime(required=True, metadata={"description": "ISO 8601; without an offset: CRM_TIMEZONE"})
    ends_at = nullable(IsoDateTime, metadata={"description": "the announced end (optional)"})
    text = fields.String(required=True, validate=validate.Length(max=2000), metadata={
        "description": "what operators read to callers (3–2000 characters)"})


class IncidentCloseSchema(Schema):
    text = fields.String(required=True, validate=validate.Length(max=2000), metadata={
        "description": "what the citizens of the linked appeals are told (the comment of their appeal's "
                       "resolution, in the status notification where they consented)"})


class IncidentCallSchema(Schema):
    citizen_id = fields.String(required=True, validate=validate.Length(max=36), metadata={
        "description": "the caller"})
    call_id = nullable(fields.String, validate=validate.Length(max=36), metadata={
        "description": "the telephony's recording of this call (POST /calls with `citizen_id`), when there is one"})


class IncidentCallCreatedSchema(Schema):
    id = fields.Integer(required=True)
    incident_id = fields.Integer(required=True)
    calls_count = fields.Integer(required=True)


class ActiveQuerySchema(Schema):
    address = fields.String(validate=validate.Length(max=300), metadata={
        "description": "the caller's address, any spelling (the register's house, or a street or district incident)"})
    building_id = fields.Integer(metadata={"description": "the register's house instead of `address`"})
    topic = fields.String(metadata={"enum": list(TOPICS)})


class ListQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf(["open", "closed"]), metadata={"enum": ["open", "closed"]})


class RecalculationSchema(Schema):
    """ПП РФ № 354 Appendix 1: the outage against the permitted interruption of the service."""

    applies = fields.Boolean(required=True, metadata={
        "description": "the service is one of Appendix 1 (water, sewerage, electricity, gas, heating)"})
    required = fields.Boolean(required=True, metadata={
        "description": "the outage exceeds the permitted duration: the bill must be recalculated"})
    basis = nullable(fields.String, required=True, metadata={"examples": ["ПП РФ № 354, прил. 1, п. 4"]})
    permitted_once_h = nullable(fields.Float, required=True, metadata={"description": "hours at a time"})
    permitted_month_h = nullable(fields.Float, required=True, metadata={"description": "hours in a month, in total"})
    duration_h = fields.Float(required=True, metadata={"description": "this outage, start to closing (or now)"})
    month_total_h = nullable(fields.Float, required=True, metadata={
        "description": "outages of the same service on the same houses in the month of its start"})
    excess_h = fields.Float(required=True)
    reduction_percent = fields.Float(required=True, metadata={
        "description": "0.15 % of the month's payment per hour beyond the permitted duration"})
    note = nullable(fields.String, required=True)


class BuildingRefSchema(Schema):
    id = fields.Integer(required=True)
    address = fields.String(required=True)


class IncidentBriefSchema(Schema):
    id = fields.Integer(required=True)
    text = fields.String(required=True, metadata={"description": "what operators read to callers"})
    topic = fields.String(required=True, metadata={"enum": list(TOPICS)})
    kind = fields.String(required=True, metadata={"enum": list(KINDS)})
    status = fields.String(required=True, validate=validate.OneOf(STATUSES), metadata={
        "description": "active, upcoming (starts within CRM_INCIDENT_UPCOMING_H) or closed"})
    scope = fields.String(required=True, metadata={"enum": list(SCOPES)})
    starts_at = IsoDateTime(required=True)
    ends_at = nullable(IsoDateTime, required=True)


class IncidentSchema(IncidentBriefSchema):
    class Meta(IncidentBriefSchema.Meta):
        extends = IncidentBriefSchema

    street = nullable(fields.String, required=True)
    district = nullable(fields.String, required=True)
    buildings = fields.List(fields.Nested(BuildingRefSchema), required=True, metadata={
        "description": "the houses of scope `buildings`"})
    closed_at = nullable(IsoDateTime, required=True)
    closing_text = nullable(fields.String, required=True)
    created_at = IsoDateTime(required=True)
    appeals_count = fields.Integer(required=True, metadata={"description": "appeals opened about the incident"})
    calls_count = fields.Integer(required=True, metadata={
        "description": "calls attached to the incident instead of opening an appeal"})
    recalculation = fields.Nested(RecalculationSchema, required=True)


class IncidentListSchema(Schema):
    items = fields.List(fields.Nested(IncidentSchema), required=True)


class ActiveListSchema(Schema):
    items = fields.List(fields.Nested(IncidentBriefSchema), required=True)


class UnknownAddressSchema(Schema):
    """422 unknown_address: the addresses not found in the buildings register."""

    error = fields.Nested(ErrorBodySchema, required=True)
    addresses = fields.List(fields.String(), required=True)
