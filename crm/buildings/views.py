"""``/buildings``: the register as supervisors and administrators read it (filling it is
``crm buildings import``)."""
from __future__ import annotations

from flask import Blueprint, render_template, request

from crm.buildings import services
from crm.security.permissions import roles_required

bp = Blueprint("buildings", __name__)
PAGE = 200


@bp.get("/buildings")
@roles_required("supervisor", "admin")
def building_list():
    """Every building by address, or those matching ``?q=`` as the autocomplete matches them."""
    q = (request.args.get("q") or "").strip()[:200]
    rows = services.search(q, limit=50) if q else services.buildings(limit=PAGE)
    return render_template("buildings/list.html", rows=rows, q=q, total=services.count(), page=PAGE)
