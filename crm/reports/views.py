"""The KPI page for supervisors and administrators (``/reports``): the figures of
``GET /api/v1/reports/kpi`` for a period of local days, satisfaction (CSAT) among them. Aggregates only:
nothing is decrypted, nothing is logged."""
from __future__ import annotations

from flask import Blueprint, render_template, request

from crm.errors import InvalidInput
from crm.reports import services as reports
from crm.security.permissions import roles_required

bp = Blueprint("reports", __name__)


@bp.get("/reports")
@roles_required("supervisor", "admin")
def kpi_page():
    """``?from=YYYY-MM-DD&to=YYYY-MM-DD`` (default the last 30 days) → the KPI table; a bad day comes back
    400 with the message under the form."""
    error, status = None, 200
    try:
        period = reports.period(request.args.get("from") or None, request.args.get("to") or None)
    except InvalidInput as exc:
        error, status = str(exc), 400
        period = reports.period(None, None)
    return render_template("reports/kpi.html", k=reports.kpi(period), period=period, error=error), status
