"""The KPI report of ``/api/v1/reports/kpi``."""
from __future__ import annotations

from crm.api.schemas import IsoDate, Schema, fields, nullable


class KpiSchema(Schema):
    from_ = IsoDate(attribute="from", data_key="from", required=True)
    to = IsoDate(required=True)
    timezone = fields.String(metadata={"examples": ["Europe/Moscow"]})
    appeals_total = fields.Integer(required=True, metadata={"description": "appeals received in the period"})
    by_category = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    by_topic = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    repeats = fields.Integer()
    repeat_rate = nullable(fields.Float, required=True,
                           metadata={"description": "repeats / appeals_total (0–1); null without appeals"})
    first_contact_resolution_rate = nullable(fields.Float, metadata={
        "description": "share (0–1) of the period's appeals, rejected and duplicates left out, closed at the first "
                       "contact («консультация дана» on the call, never escalated nor re-opened, and not answered «не решено» "
                       "or «обращался не впервые» in the CSAT survey); null without such appeals"})
    sla_compliance = nullable(fields.Float, required=True, metadata={
        "description": "share (0–1) of the period's appeals, rejected and duplicates left out, resolved by their "
                       "resolve_by or still open and not past it; null without such appeals"})
    avg_time_to_resolve_h = nullable(fields.Float, metadata={"description": "hours from receipt to resolution"})
    csat_avg = nullable(fields.Float, required=True, metadata={
        "description": "mean satisfaction score (1–5) of the CSAT survey answers received in the period; null without "
                       "answers"})
    csat_responses = fields.Integer(metadata={"description": "CSAT survey answers received in the period"})
    csat_solved_rate = nullable(fields.Float, metadata={
        "description": "share (0–1) of those answers saying the problem was solved; null without answers"})
    csat_first_time_rate = nullable(fields.Float, metadata={
        "description": "share (0–1) of the answers to «Вы обращались по этой проблеме впервые?» saying yes"})
    csat_surveys_sent = fields.Integer(metadata={"description": "CSAT survey links sent in the period"})
    calls_total = fields.Integer()
    avg_call_duration_s = nullable(fields.Float)
    evaluations_total = fields.Integer()
    qa_score_avg = nullable(fields.Float, required=True,
                            metadata={"description": "mean evaluation score (0–100) in the period"})
