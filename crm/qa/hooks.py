"""The QA package's reactions to hooks (:mod:`crm.hooks`), subscribed by the factory."""
from __future__ import annotations

from flask import request

from crm import hooks
from crm.qa import services
from crm.qa.forms import EvaluationForm


def _after_transcript(call_id: str, segments: list[dict], **_: object) -> None:
    """``call.transcribed``: store the automatic checks (:func:`crm.qa.services.after_transcript`)."""
    services.after_transcript(call_id, segments)


def _call_page(call, status: int = 200, form=None, **_: object) -> dict:
    """``call.page``: the scorecard section of the call page (``qa/_call_panel.html``): whether the
    call passes the QA-consent gate (``qa_allowed``; else no scorecard form), the default scorecard, ``form`` (a form sent back with its answers and errors, else an empty one), the call's
    evaluations and the one just saved (``?saved=<id>``)."""
    card = services.ensure_default_scorecard()
    return {"template": "qa/_call_panel.html", "scorecard": card, "qa_allowed": services.qa_permitted(call),
            "form": form or EvaluationForm.for_scorecard(card), "evaluations": services.for_call(call.id),
            "saved": request.args.get("saved"), "form_sent": status != 200}


def _call_export(call_id: str, erased: bool, **_: object) -> dict:
    """``call.export``: the call's evaluations for an access export (comments dropped once the
    citizen's data were erased)."""
    return {"evaluations": [{"at": ev.created_at.isoformat(), "score": ev.score,
                             "comment": None if erased else ev.comment}
                            for ev in services.for_call(call_id, for_subject=True)]}


def _api_fields(call, segments: list[dict], **_: object) -> dict:
    """``call.api_fields``: the call's automatic checks for ``GET /api/v1/calls/{id}`` (``qa_checks``);
    ``[]`` for a call that does not pass the QA-consent gate (their details can quote the citizen's
    words: they are QA processing like the transcript, which the gate withholds too)."""
    if not services.qa_permitted(call):
        return {"qa_checks": []}
    return {"qa_checks": services.checks_for_call(call, segments)}


def _call_erased(call_id: str, **_: object) -> None:
    """``call.erased`` (a recording destroyed after a QA-consent withdrawal): the automatic checks'
    details and the evaluations' comments, notes, dispute reasons and resolutions, which can quote
    what was said, go with it; pass/fail, values and scores stay as statistics."""
    services.forget_check_details(call_id, commit=False)
    services.forget_texts(call_id)


def register() -> None:
    """Subscribe the QA package's handlers (idempotent)."""
    hooks.subscribe("call.transcribed", _after_transcript)
    hooks.subscribe("call.page", _call_page)
    hooks.subscribe("call.export", _call_export)
    hooks.subscribe("call.api_fields", _api_fields)
    hooks.subscribe("call.erased", _call_erased)
    hooks.subscribe("call.qa_allowed", services.qa_permitted)
