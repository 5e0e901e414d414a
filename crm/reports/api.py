"""``/api/v1/reports/kpi``: KPIs for a period of Europe/Moscow days."""
from __future__ import annotations

from flask import request

from crm.api import bp, token_required
from crm.reports import services as reports


@bp.get("/reports/kpi")
@token_required("supervisor", "admin")
def kpi():
    """``?from=YYYY-MM-DD&to=YYYY-MM-DD`` (inclusive Moscow days) → the KPI object."""
    return reports.kpi(reports.period(request.args.get("from"), request.args.get("to")))
