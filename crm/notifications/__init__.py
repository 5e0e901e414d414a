"""Notifications to citizens that are really sent: templates, SMS and e-mail transports, quiet hours,
RQ delivery jobs with retries, and delivery status from the provider's callback.

:func:`init_app` installs the transports the configuration names (``CRM_SMS_PROVIDER`` and
``CRM_SMS_*``, ``CRM_SMTP_*``); without them messages are only written to the outbox and say so
(«в журнале (не отправлено)»). Other features notify through :mod:`crm.notifications.services`.
The message store is the consent package's outbox (:mod:`crm.consent.sms`), which erasure, retention,
the access export and the DPO's outbox page already cover.
"""
from __future__ import annotations

from crm.consent import sms
from crm.notifications import services, transports


def init_app(app) -> None:
    """Install the SMS gateway and the e-mail transport from ``app.config``. Raises ValueError for a
    wrong provider setting (the app must not start believing it sends)."""
    gw = transports.sms_gateway_from_config(app.config)
    if gw is not None:
        sms.set_gateway(app, gw)
    services.set_email_transport(app, transports.email_transport_from_config(app.config))
