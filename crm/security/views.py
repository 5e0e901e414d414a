"""DPO pages: the access log."""
from __future__ import annotations

from flask import Blueprint, render_template, request

from crm.db import db
from crm.security.models import AccessLogEntry
from crm.security.permissions import roles_required

bp = Blueprint("security", __name__)


@bp.get("/dpo/access-log")
@roles_required("dpo")
def access_log():
    q = db.select(AccessLogEntry).order_by(AccessLogEntry.seq.desc())
    citizen_id = request.args.get("citizen_id", "").strip()
    actor = request.args.get("actor", "").strip()
    action = request.args.get("action", "").strip()
    if citizen_id:
        q = q.where(AccessLogEntry.citizen_id == citizen_id)
    if actor:
        q = q.where(AccessLogEntry.actor == actor)
    if action:
        q = q.where(AccessLogEntry.action == action)
    page = max(request.args.get("page", 1, type=int), 1)
    rows = db.session.execute(q.limit(100).offset((page - 1) * 100)).scalars().all()
    return render_template("security/access_log.html", rows=rows, page=page, citizen_id=citizen_id, actor=actor,
                           action=action)
