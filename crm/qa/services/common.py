"""What every part of the QA services shares: the operator's answer states, the call statuses that
can be scored, the error type, and the QA-consent gate.

**The QA-consent gate** (:func:`qa_permitted`, :func:`require_qa_consent`, :func:`permitted_calls`)
is the one place QA decides whether a call may be used for quality control: sampled, kept in a
review queue, shown on the review page, evaluated (form and API), calibrated, found by the
transcript search, its transcript or recording shown for QA. A call may be used only when its
citizen's latest answer to ``call_recording_qa`` is a consent in force and no demand to stop it is
open (:func:`crm.consent.services.qa_allowed`, 152-ФЗ ст. 9; the latest answer wins, so a refusal
after a consent withdraws it); a call tied to no citizen has nobody's consent and is refused. The
calls package, below QA, asks the gate through the ``call.qa_allowed`` hook."""
from __future__ import annotations

from collections.abc import Iterable

from crm.consent import services as consent
from crm.errors import CrmError
from crm.i18n import N_, lazy_gettext as _l

OPERATOR_STATUS_RU = {"new": N_("ожидает ответа"), "acknowledged": N_("принята"), "disputed": N_("оспорена"),
                      "upheld": N_("оставлена без изменений"), "changed": N_("изменена после спора")}

TRANSCRIBED = ("done", "no_speech")


class EvaluationError(CrmError, ValueError):
    """A QA action refused: Russian ``message``; ``field`` the form field at fault; ``code`` for
    the API (``invalid``, ``not_transcribed``, ``forbidden``, ``too_late``, ``bad_state``,
    ``no_consent``, ``erased``, ``recording_destroyed``); ``status`` follows the code (:data:`STATUS_OF_CODE`, else 400)."""

    def __init__(self, message: str, field: str | None = None, code: str = "invalid"):
        super().__init__(message, code=code, field=field, status=STATUS_OF_CODE.get(code, 400))


#: The HTTP status of an :class:`EvaluationError` by its code (crm.errors hierarchy).
STATUS_OF_CODE = {"forbidden": 403, "no_consent": 403, "not_transcribed": 409, "too_late": 409, "bad_state": 409,
                  "erased": 410, "recording_destroyed": 410}


# --- the QA-consent gate ----------------------------------------------------------------------------

#: May the calls of a citizen (an id, or None) be used for quality control? The consent package's
#: answer (:func:`crm.consent.services.qa_allowed`), which :func:`qa_permitted` asks per call.
qa_allowed = consent.qa_allowed

NO_CONSENT_RU = _l("заявитель не давал согласия на контроль качества по записи (или отозвал его)")


def qa_permitted(call, **_: object) -> bool:
    """May ``call`` (a row with ``citizen_id``; None: no) be used for quality control now? See the
    module docstring. Also the answer to the ``call.qa_allowed`` hook."""
    return call is not None and bool(getattr(call, "citizen_id", None)) and consent.qa_allowed(call.citizen_id)


def require_qa_consent(call) -> None:
    """Raise :class:`EvaluationError` (code ``no_consent``, HTTP 403) unless :func:`qa_permitted`."""
    if not qa_permitted(call):
        raise EvaluationError(NO_CONSENT_RU, "call_id", "no_consent")


def permitted_calls(calls: Iterable) -> list:
    """The calls of ``calls`` that :func:`qa_permitted` lets through, in their order (the consent is
    asked once per citizen): the filter for every list QA builds (sample candidates, queues)."""
    answers: dict[str, bool] = {}
    out = []
    for call in calls:
        cid = getattr(call, "citizen_id", None)
        if cid and cid not in answers:
            answers[cid] = consent.qa_allowed(cid)
        if cid and answers[cid]:
            out.append(call)
    return out
