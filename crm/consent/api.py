"""``/api/v1``: recording and withdrawing a citizen's consents (152-ФЗ ст. 9)."""
from __future__ import annotations

from flask import g, request

from crm.api import ApiError, bp, token_required
from crm.api.openapi import check_body
from crm.calls import services as calls
from crm.citizens import services as citizens
from crm.consent import services as consent
from crm.db import db
from crm.errors import api_error


@bp.errorhandler(consent.ConsentError)
def _consent_error(exc: consent.ConsentError):
    db.session.rollback()
    if exc.code == "invalid":
        return api_error(400, f"invalid_{exc.field or 'consent'}", str(exc))
    return api_error(409, exc.code, str(exc))  # erased


def _citizen(citizen_id: str):
    citizen = citizens.get(citizen_id)
    if citizen is None:
        raise ApiError(404, "not_found", "заявитель не найден")
    return citizen


@bp.get("/citizens/<citizen_id>/consents")
@token_required("operator", "admin", "dpo")
def consent_list(citizen_id: str):
    """``{"items": [consent]}``, oldest first (ids, purposes, times: no personal values)."""
    return {"items": [consent.as_dict(e) for e in consent.for_citizen(_citizen(citizen_id).id)]}


@bp.post("/citizens/<citizen_id>/consents")
@token_required("operator", "admin")
def consent_create(citizen_id: str):
    """``{"purpose", "text_version"?, "channel"?, "given"?, "evidence_call_id"?, "evidence_offset_s"?}``
    → 201 with the consent event (200 with the existing one when a consent for the same purpose and
    text version is already in force); 409 when the citizen's data were erased."""
    citizen = _citizen(citizen_id)
    body = check_body("ConsentCreate")
    evidence = body.get("evidence_call_id")
    if evidence and calls.get(evidence) is None:
        raise ApiError(404, "call_not_found", "звонок-подтверждение не найден")
    event = consent.record(citizen, body["purpose"], text_version=body.get("text_version"),
                           channel=body.get("channel") or "call", given=body.get("given", True),
                           operator_id=g.api_user.id, evidence_call_id=evidence,
                           evidence_offset_s=body.get("evidence_offset_s"))
    # a consent already in force for this purpose and text: returned as it is, nothing new recorded
    return consent.as_dict(event), 200 if getattr(event, "repeated", False) else 201


@bp.post("/consents/<consent_id>/withdraw")
@token_required("operator", "admin", "dpo")
def consent_withdraw(consent_id: str):
    """Optional ``{"channel"}`` (default ``api``) → 200 with the event, ``status: "withdrawn"``."""
    event = consent.get(consent_id)
    if event is None:
        raise ApiError(404, "not_found", "согласие не найдено")
    channel = check_body("ConsentWithdraw").get("channel", "api") if request.get_data() else "api"
    if channel not in consent.CHANNELS:
        raise ApiError(400, "invalid_channel", f"неизвестный канал «{channel[:40]}»")
    return consent.as_dict(consent.withdraw(event, channel=channel, user_id=g.api_user.id))
