"""``/api/v1/audit``: the access log for the data-protection officer, newest first."""
from __future__ import annotations

from datetime import timedelta

from flask import request

from crm.api import ApiError, Blueprint, token_required
from crm.db import db
from crm.dpo.schemas import AuditPageSchema, AuditQuerySchema
from crm.i18n import lazy_gettext as _l
from crm.security.audit.chain import entry_dict
from crm.security.models import AccessLogEntry
from crm.timeutil import day_start, parse_day

MAX_LIMIT = 500

bp = Blueprint("api_dpo", __name__, description="The access log (for the data-protection officer)")


def _int_arg(name: str, default: int | None, low: int, high: int | None = None) -> int | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < low or (high is not None and int(raw) > high):
        bound = (_l("от %(low)s до %(high)s", low=low, high=high) if high is not None
                 else _l("не меньше %(low)s", low=low))
        raise ApiError(400, f"invalid_{name}", _l("«%(name)s» должно быть целым числом %(bound)s",
                                                  name=name, bound=bound))
    return int(raw)


def _render(row: AccessLogEntry) -> dict:
    data = entry_dict(row)
    data["at"] = row.at.isoformat()
    data["fields"] = [f for f in (row.fields or "").split(",") if f]
    data["hash"] = row.hash
    return data


@bp.route("/audit", methods=["GET"])
@token_required("dpo")
@bp.query(AuditQuerySchema)
@bp.response(200, AuditPageSchema)
@bp.errors({400: "a bad date, limit or before_seq"})
def audit_log(args: dict):
    """The access log, newest first

    Access-log entries, newest first. Filters ``citizen_id``, ``actor``, ``action``, ``from``/``to``
    (inclusive Europe/Moscow days); paging ``limit`` (1–500, default 100) and ``before_seq``.
    Entries hold ids and field names, never personal values, so reading them decrypts nothing."""
    limit = _int_arg("limit", 100, 1, MAX_LIMIT)
    before = _int_arg("before_seq", None, 1, 2**63 - 1)  # access_log.seq is a BIGINT
    q = db.select(AccessLogEntry).order_by(AccessLogEntry.seq.desc()).limit(limit + 1)
    for name in ("citizen_id", "actor", "action"):
        value = request.args.get(name, "").strip()
        if value:
            q = q.where(getattr(AccessLogEntry, name) == value)
    if request.args.get("from"):
        q = q.where(AccessLogEntry.at >= day_start(parse_day(request.args["from"], "from")))
    if request.args.get("to"):
        q = q.where(AccessLogEntry.at < day_start(parse_day(request.args["to"], "to") + timedelta(days=1)))
    if before is not None:
        q = q.where(AccessLogEntry.seq < before)
    rows = db.session.execute(q).scalars().all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [_render(r) for r in rows], "next_before_seq": rows[-1].seq if more else None}
