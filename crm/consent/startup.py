"""Check of consent's configuration, installed by :func:`crm.create_app`: the controller's name
and address (``CRM_CONTROLLER_NAME``, ``CRM_CONTROLLER_ADDRESS``). Without them no consent can be
recorded (:func:`crm.consent.services.record` refuses), so a warning is logged rather than the app
refusing to start (appeals are still taken). Logged when the app serves its first request (the web
app and ``crm run``), not when it is made: a command line that records no consent (``crm
transcribe``, ``crm users …``) has no use for it on its stderr."""
from __future__ import annotations

from flask import current_app

from crm.consent.services import controller_configured


def check_controller(app) -> bool:
    """Log a warning when the controller's name or address is not configured; True when both are."""
    if controller_configured(app.config):
        return True
    app.logger.warning("CRM_CONTROLLER_NAME / CRM_CONTROLLER_ADDRESS are not set in instance/config.py: "
                       "consents cannot be recorded until the operator of personal data (152-FZ art. 9 "
                       "part 4) is configured")
    return False


def init_app(app) -> None:
    """Run :func:`check_controller` once, before the first request the app serves (a few threads
    starting together may each log it; no harm)."""
    checked = []

    @app.before_request
    def check_controller_once():
        if not checked:
            checked.append(True)
            check_controller(current_app)
