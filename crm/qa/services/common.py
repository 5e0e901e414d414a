"""What every part of the QA services shares: the operator's answer states, the call statuses that
can be scored, the error type, and the consent question (asked of the consent package)."""
from __future__ import annotations

from crm.consent import services as consent
from crm.errors import CrmError
from crm.i18n import N_

OPERATOR_STATUS_RU = {"new": N_("ожидает ответа"), "acknowledged": N_("принята"), "disputed": N_("оспорена"),
                      "upheld": N_("оставлена без изменений"), "changed": N_("изменена после спора")}

TRANSCRIBED = ("done", "no_speech")


class EvaluationError(CrmError, ValueError):
    """A QA action refused: Russian ``message``; ``field`` the form field at fault; ``code`` for
    the API (``invalid``, ``not_transcribed``, ``forbidden``, ``too_late``, ``bad_state``,
    ``no_consent``, ``erased``); ``status`` follows the code (:data:`STATUS_OF_CODE`, else 400)."""

    def __init__(self, message: str, field: str | None = None, code: str = "invalid"):
        super().__init__(message, code=code, field=field, status=STATUS_OF_CODE.get(code, 400))


#: The HTTP status of an :class:`EvaluationError` by its code (crm.errors hierarchy).
STATUS_OF_CODE = {"forbidden": 403, "no_consent": 403, "not_transcribed": 409, "too_late": 409, "bad_state": 409,
                  "erased": 410}


# --- consent ---------------------------------------------------------------------------------------

#: May the call of a citizen be used for quality control? The one rule, in the consent package
#: (:func:`crm.consent.services.qa_allowed`).
qa_allowed = consent.qa_allowed
