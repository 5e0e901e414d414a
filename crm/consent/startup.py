"""Start-up check of consent's configuration, run by :func:`crm.create_app`: the controller's name
and address (``CRM_CONTROLLER_NAME``, ``CRM_CONTROLLER_ADDRESS``). Without them no consent can be
recorded (:func:`crm.consent.services.record` refuses), so a warning is logged rather than the app
refusing to start (appeals are still taken)."""
from __future__ import annotations

from crm.consent.services import controller_configured


def check_controller(app) -> bool:
    """Log a warning when the controller's name or address is not configured; True when both are."""
    if controller_configured(app.config):
        return True
    app.logger.warning("CRM_CONTROLLER_NAME / CRM_CONTROLLER_ADDRESS are not set in instance/config.py: "
                       "consents cannot be recorded until the operator of personal data (152-FZ art. 9 "
                       "part 4) is configured")
    return False
