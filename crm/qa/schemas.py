"""The QA resources of ``/api/v1``: an evaluation of a call, and the automatic checks shown with a call."""
from __future__ import annotations

from marshmallow import validate

from crm.api.schemas import IsoDateTime, Schema, fields, nullable
from crm.qa.checks import CODES


class QaCheckSchema(Schema):
    """One automatic check of a transcribed call (``crm.qa.checks``)."""

    code = fields.String(required=True, validate=validate.OneOf(CODES))
    passed = fields.Boolean(required=True, metadata={"description": "false also when state is unsure"})
    state = fields.String(validate=validate.OneOf(("passed", "failed", "unsure")), metadata={
        "description": "unsure: the check's phrase was found only through words recognised with a probability "
                       "below 0.5 (CRM_WORD_UNSURE_P), or the check would fail but the transcript does not tell the "
                       "speakers apart (a mono recording, every segment's speaker unknown) — listen there; "
                       "neither passed nor failed"})
    detail = fields.String(required=True, metadata={"description": "a Russian sentence for the reviewer"})


class EvaluationCreateSchema(Schema):
    answers = fields.Dict(keys=fields.String(), values=fields.String(), required=True, metadata={
        "description": "criterion code → answer: yes, no or na, or \"0\"..\"N\" for a scale criterion; every "
                       "criterion of the active scorecard (greeting, problem_identified, correct_information, "
                       "politeness, closing by default)"})
    comment = nullable(fields.String, validate=validate.Length(max=5000))


class EvaluationSchema(Schema):
    id = fields.String(required=True)
    call_id = fields.String(required=True)
    scorecard_id = fields.Integer()
    scorecard_version = nullable(fields.Integer)
    evaluator_id = fields.Integer()
    operator_id = nullable(fields.Integer)
    answers = fields.Dict(keys=fields.String(), values=fields.Raw(metadata={"type": ["string", "integer"]}), metadata={
        "description": "criterion code → yes, no or na; a scale criterion's answer is its number (0..N)"})
    score = fields.Float(required=True, metadata={"description": "0–100; 0 when a critical criterion is no"})
    revision = fields.Integer()
    operator_status = nullable(fields.String)
    respond_by = nullable(IsoDateTime)
    created_at = IsoDateTime()
