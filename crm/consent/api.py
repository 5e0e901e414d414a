"""``/api/v1``: recording and withdrawing a citizen's consents (152-ФЗ ст. 9)."""
from __future__ import annotations

from flask import g

from crm import hooks
from crm.api import ApiError, Blueprint, token_required, translates
from crm.citizens import services as citizens
from crm.consent import services as consent
from crm.consent.schemas import ConsentCreateSchema, ConsentListSchema, ConsentSchema, ConsentWithdrawSchema
from crm.i18n import lazy_gettext as _l

bp = Blueprint("api_consent", __name__, description="Consents of citizens (152-ФЗ ст. 9)")


@translates(consent.ConsentError)
def _consent_error(exc: consent.ConsentError) -> ApiError:
    if exc.code == "invalid":
        return ApiError(400, f"invalid_{exc.field or 'consent'}", str(exc))
    return ApiError(409, exc.code, str(exc))  # erased


def _citizen(citizen_id: str):
    citizen = citizens.get(citizen_id)
    if citizen is None:
        raise ApiError(404, "not_found", _l("заявитель не найден"))
    return citizen


@bp.route("/citizens/<citizen_id>/consents", methods=["GET"])
@token_required("operator", "admin", "dpo")
@bp.response(200, ConsentListSchema)
@bp.errors({404: "unknown id"})
def consent_list(citizen_id: str):
    """The citizen's consent events

    ``{"items": [consent]}``, oldest first (ids, purposes, times: no personal values)."""
    return {"items": [consent.as_dict(e) for e in consent.for_citizen(_citizen(citizen_id).id)]}


@bp.route("/citizens/<citizen_id>/consents", methods=["POST"])
@token_required("operator", "admin")
@bp.body(ConsentCreateSchema)
@bp.response(201, ConsentSchema)
@bp.alt_response(200, schema=ConsentSchema, description=(
    "a consent for the same purpose and text version is already in force: it is returned and nothing new is "
    "recorded (idempotent)"))
@bp.errors({404: "unknown citizen or evidence call", 409: "the citizen's data were erased (code erased)"})
def consent_create(body: dict, citizen_id: str):
    """Record a consent (or a refusal)

    ``{"purpose", "text_version"?, "channel"?, "given"?, "evidence_call_id"?, "evidence_offset_s"?}`` → 201
    with the consent event (200 with the existing one when a consent for the same purpose and text version
    is already in force); 409 when the citizen's data were erased."""
    citizen = _citizen(citizen_id)
    evidence = body.get("evidence_call_id")
    if evidence and hooks.ask("call.lookup", call_id=evidence) is None:
        raise ApiError(404, "call_not_found", _l("звонок-подтверждение не найден"))
    event = consent.record(citizen, body["purpose"], text_version=body.get("text_version"),
                           channel=body.get("channel") or "call", given=body.get("given", True),
                           operator_id=g.api_user.id, evidence_call_id=evidence,
                           evidence_offset_s=body.get("evidence_offset_s"))
    # a consent already in force for this purpose and text: returned as it is, nothing new recorded
    return consent.as_dict(event), 200 if getattr(event, "repeated", False) else 201


@bp.route("/consents/<consent_id>/withdraw", methods=["POST"])
@token_required("operator", "admin", "dpo")
@bp.body(ConsentWithdrawSchema, required=False)
@bp.response(200, ConsentSchema, description="status is withdrawn")
@bp.errors({404: "unknown id", 400: "malformed JSON or an unknown channel"})
def consent_withdraw(body: dict, consent_id: str):
    """Withdraw a consent (idempotent: a second withdrawal keeps the first time)

    The body is optional: `{"channel": "call"}` when the citizen withdrew on the phone (default `api`)."""
    event = consent.get(consent_id)
    if event is None:
        raise ApiError(404, "not_found", _l("согласие не найдено"))
    channel = body.get("channel", "api")
    if channel not in consent.CHANNELS:
        raise ApiError(400, "invalid_channel", _l("неизвестный канал «%(channel)s»", channel=channel[:40]))
    return consent.as_dict(consent.withdraw(event, channel=channel, user_id=g.api_user.id))
