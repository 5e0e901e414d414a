"""``/api/v1/reports/kpi``: KPIs for a period of local days (``CRM_TIMEZONE``)."""
from __future__ import annotations

from flask import request

from crm.api import Blueprint, token_required
from crm.reports import services as reports
from crm.reports.schemas import KpiSchema

bp = Blueprint("api_reports", __name__, description="Reports")


@bp.route("/reports/kpi", methods=["GET"])
@token_required("supervisor", "admin")
@bp.response(200, KpiSchema)
@bp.errors({400: "a bad date, or from after to"})
@bp.doc(parameters=[
    {"name": "from", "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
     "description": "first day, YYYY-MM-DD; default 29 days before `to`"},
    {"name": "to", "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
     "description": "last day, YYYY-MM-DD, inclusive; default today"}])
def kpi():
    """KPIs for a period of local days (CRM_TIMEZONE)

    ``?from=YYYY-MM-DD&to=YYYY-MM-DD`` (inclusive days) → the KPI object. The days are checked by
    :func:`crm.reports.services.period`, whose messages name the parameter."""
    return reports.kpi(reports.period(request.args.get("from"), request.args.get("to")))
