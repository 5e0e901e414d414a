"""``/api/v1``: the SMS provider's delivery reports (callback).

``POST /api/v1/delivery-reports/<provider>?token=<CRM_SMS_CALLBACK_TOKEN>``: the provider posts a
report (SMSC.ru: form fields ``id``, ``phone``, ``status``, ``err``) to the URL set in its account.
The per-deployment secret ``CRM_SMS_CALLBACK_TOKEN`` travels in the query string (the request logs of
the app and of its gunicorn config drop query strings, crm.weblog) or in the ``X-CRM-Callback-Token``
header; compared in constant time. A forged report (no or a wrong token) is refused 401 and changes
nothing; without a configured token every report is refused 503.
"""
from __future__ import annotations

import hmac

from flask import current_app, request

from crm.api import ApiError, Blueprint
from crm.errors import api_error
from crm.i18n import N_, lazy_gettext as _l, translate
from crm.notifications import services
from crm.notifications.schemas import DeliveryReportAckSchema
from crm.notifications.transports import SMS_PROVIDERS

bp = Blueprint("api_notifications", __name__, description="Notifications to citizens: delivery reports")
MAX_BODY = 16 * 1024


def _token_ok(expected: str) -> bool:
    given = request.args.get("token") or request.headers.get("X-CRM-Callback-Token") or ""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))


@bp.route("/delivery-reports/<provider>", methods=["POST"])
@bp.response(200, DeliveryReportAckSchema)
@bp.errors({400: "a report without a message id or with an unknown status", 401: "missing or wrong token",
            404: "unknown provider", 503: "CRM_SMS_CALLBACK_TOKEN is not set"})
@bp.doc(security=[])
def delivery_report(provider: str):
    """An SMS provider's delivery report

    Authenticated by the per-deployment secret `CRM_SMS_CALLBACK_TOKEN` (`?token=` or the
    `X-CRM-Callback-Token` header). The message the provider knows by `id` moves to `sent`,
    `delivered` or `failed` (never back); `updated: false` when no message has that id."""
    expected = current_app.config["CRM_SMS_CALLBACK_TOKEN"]
    if not expected:
        return api_error(503, "callbacks_not_configured",
                         translate(N_("секрет для отчётов о доставке не настроен (CRM_SMS_CALLBACK_TOKEN)")))
    if not _token_ok(expected):
        return api_error(401, "invalid_token", translate(N_("отчёт о доставке без верного секрета отклонён")))
    gateway = SMS_PROVIDERS.get(provider)
    if gateway is None:
        raise ApiError(404, "unknown_provider", _l("неизвестный SMS-провайдер"))
    request.max_content_length = MAX_BODY
    form = request.form.to_dict() if request.form else (request.get_json(silent=True) or {})
    try:
        report = gateway.parse_callback(form if isinstance(form, dict) else {})
    except ValueError:
        raise ApiError(400, "invalid_report", _l("в отчёте о доставке нет номера сообщения или известного статуса"))
    msg = services.apply_report(gateway.name, report.provider_message_id, report.status, report.code)
    return {"ok": True, "updated": msg is not None, "status": msg.status if msg is not None else None}
