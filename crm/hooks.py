"""Cross-feature reactions, declared once: a feature *fires* a named hook, others *subscribe* to it.

The layers (pyproject.toml, ``[tool.importlinter]``) let a feature import only what lies below it.
When a lower feature must make a higher one react — a transcript is ready and QA runs its automatic
checks; an appeal changed status and the citizen is notified — the lower feature fires a hook and the
higher one subscribes in its ``hooks.register()`` (``crm/<feature>/hooks.py``), which the application
factory calls (``crm.register_hooks``). Neither imports the
other.

Hooks are synchronous and run inside the caller's transaction, in subscription order, so a reaction
that writes rows commits (or rolls back) with the change that caused it. A reaction that must not
delay the caller enqueues a job instead, through ``crm.jobs``.

Known hooks (the name, who fires it, the keyword arguments):

- ``call.transcribed`` — ``crm.calls`` after a transcript is stored; ``call_id: str``,
  ``segments: list[dict]`` (as stored, :func:`crm.calls.services.save_transcript`: text with numbers in
  digits, plaintext in memory: nothing is decrypted again).
- ``call.page`` — ``crm.calls.views`` while rendering the call page; ``call`` (the row), ``user``,
  ``status: int`` (422 when a form is sent back) and the view's extra arguments (e.g. QA's ``form``).
  A subscriber returns ``{"template": <an included template>, ...}`` (the template reads it as
  ``panel``) or None.
- ``call.erased`` — ``crm.calls`` after a call's recording and transcript are destroyed; ``call_id``.
- ``appeal.transitioned`` — ``crm.appeals`` after a status change has been committed;
  ``appeal_id: str``, ``old: str``, ``new: str``, ``event_id: str``.
- ``appeal.registered`` — ``crm.appeals.services.register_appeal`` after a new appeal has been
  committed (not for a replayed submission); ``appeal_id: str``, ``call_ref: str | None`` (the reference of
  the telephony call the intake form was opened from, opaque to crm.appeals: ``crm.telephony.pop`` checks it
  and links the appeal to that call).
- ``appeal.latest_call`` — ``crm.consent`` asks for the evidence of a consent given on a call when
  only the appeal is known; ``appeal_id: str``. A subscriber returns the id of the appeal's latest
  call, or None.
- ``citizen.export`` — ``crm.consent.rights`` while building an access export (152-ФЗ ст. 14);
  ``citizen_id: str``, ``purpose: str`` (for the reads' log entries), ``erased: bool``. A subscriber
  returns a dict of top-level sections (``{"appeals": [...]}``), merged into the export.
- ``call.export`` — ``crm.appeals`` for each call in that export; ``call_id: str``, ``erased: bool``.
  A subscriber returns a dict of keys added to the call's entry (QA: ``evaluations``).
- ``citizen.appeal_numbers`` — ``crm.consent.rights`` for a destruction act's subject;
  ``citizen_id: str``. A subscriber returns a list of appeal numbers.
- ``retention.activity`` — ``crm.consent.retention``, no arguments. A subscriber returns a list of
  ``SELECT citizen_id, at`` statements (contact with a citizen: an appeal, a call).
- ``retention.active_work`` — ``crm.consent.retention``, no arguments. A subscriber returns a list of
  ``SELECT citizen_id`` statements: citizens whose data are kept for work in progress.
- ``retention.destroy_recordings`` — ``crm.consent.retention`` for each open withdrawal of the
  ``call_recording_qa`` consent; ``citizen_id: str``, ``actor``. A subscriber destroys the recordings
  kept only for QA (``crm.calls``) and returns its destruction record or None.
- ``retention.recordings`` — ``crm.consent.retention``; ``before`` (aware UTC). A subscriber returns
  the number of recordings of citizens not erased made before it.
- ``retention.purpose_expired`` — ``crm.consent.retention`` for each purpose whose data a feature may
  keep past its period (``sms_notifications``, ``email_notifications``, ``csat_survey``); ``purpose: str``,
  ``before`` (aware UTC: the period's start), ``dry_run: bool``, ``actor``. A subscriber clears (or,
  dry, counts) what it holds for that purpose from before ``before`` and returns how many items
  (the CSAT survey comments), logging each citizen's.
- ``call.api_fields`` — ``crm.calls.api`` while answering ``GET /api/v1/calls/{id}``; ``call`` (the row),
  ``segments`` (the transcript already read for the answer). A subscriber returns a dict of keys
  added to the answer (QA: ``qa_checks``).
- ``call.qa_allowed`` — ``crm.calls`` before it shows a transcript or recording for quality control
  or searches transcripts; ``call`` (a row with ``citizen_id``). QA answers with its one consent
  gate (:func:`crm.qa.services.common.qa_permitted`); no answer counts as "not allowed" (:func:`ask`).
- ``call.lookup`` — ``crm.consent.api`` checks an evidence call; ``call_id: str``. A subscriber
  returns the call row or None (:func:`ask`).
- ``appeal.lookup`` — ``crm.calls.api`` attaches an upload to an appeal; ``appeal_id: str``. A
  subscriber returns the appeal row or None (:func:`ask`).
- ``appeal.masking_address`` — ``crm.calls.services.known_identifiers`` masks a call's transcript for a QA
  reader; ``appeal_id: str | None`` (the call's). A subscriber returns ``(address, apartment)`` of the house
  the appeal is about (the buildings register's) or None (:func:`ask`). Logs nothing: the read is the
  caller's ``transcript.view``/``transcript.search`` entry.
- ``executor.lookup`` — ``crm.users`` checks the service of an executor-role account;
  ``executor_id: int``. A subscriber returns the executor row or None (:func:`ask`).
- ``appeal.clock_breached`` — ``crm.appeals.services.warn_clocks`` after it committed the first 100 %
  warning of a clock's cycle (a breach, to escalate to the supervisor); ``appeal_id: str``,
  ``code: str`` (the clock), ``cycle: int``.
- ``appeal.assigned`` — ``crm.appeals.services.assign`` after a hand-over has been committed;
  ``appeal_id: str``, ``executor_id: int``, ``user_id: int | None``.
- ``appeal.page`` — ``crm.appeals.views`` while rendering the appeal page; ``appeal`` (the row),
  ``user``. A subscriber returns ``{"template": <an included template>, ...}`` (the template reads it
  as ``panel``) or None.
- ``appeal.clock_warned`` — ``crm.appeals.services.warn_clocks`` after it committed each new warning
  (50, 80 and 100 % of a clock's cycle; the 100 % one also fires ``appeal.clock_breached``);
  ``appeal_id: str``, ``code: str``, ``cycle: int``, ``level: int`` (per cent).
- ``consent.changed`` — ``crm.consent`` after a consent is given, refused or withdrawn (after the
  commit when the service commits); ``citizen_id: str``, ``purpose: str``, ``status: str``
  (``active``, ``refused``, or ``withdrawn`` — also for a refusal that withdrew a consent in force).
- ``citizen.rectified`` — ``crm.citizens.services.rectify`` after a correction has been committed;
  ``citizen_id: str``, ``fields: list[str]`` (the fields changed), ``old_phone: str | None`` (the
  number before the correction, E.164, plaintext in memory, only when the phone changed), ``actor``
  (:class:`crm.security.audit.Actor`). ``crm.consent`` tells the old number (README: rectification).
- ``audit.checkpoint_restarted`` — ``crm.security.checkpoints`` after a checkpoint started a new app
  key chain (the signing key was lost or replaced); ``line: int`` (the checkpoint's line number),
  ``reason: str``. Runs before the checkpoint's log entry is committed (the DPO's alert commits with it).

- ``incident.closing`` — ``crm.incidents.services.close`` inside the closing's transaction, before its
  commit; ``incident_id: int``, ``appeal_ids: list[str]`` (the appeals linked to it), ``text: str`` (what
  the citizens are told), ``user_id: int | None``. ``crm.appeals`` resolves the appeals (no commit) and
  returns a function that ``close`` calls after the commit (the status notifications); an exception
  rolls the closing back with the resolutions.
- ``incident.surge_accepted`` — ``crm.incidents.surge.decide`` inside the transaction that registers the
  incident of an accepted surge proposal; ``incident_id: int``, ``building_id: int``, ``topic: str``,
  ``since`` (aware UTC: the surge's first appeal). ``crm.appeals`` links the open appeals of the surge.
- ``incident.proposed`` — ``crm.incidents.surge`` after it committed a new proposal (a surge of appeals on
  one building and topic); ``proposal_id: int``, ``building_id: int``, ``topic: str``, ``appeals_count: int``.
- ``queue.surge`` — ``crm.telephony.surge`` once per surge of the inbound queue (calls waiting or arriving
  well above the usual level); ``surge_id: str``, ``waiting: int``, ``arrivals: int`` (in the last
  ``window_min`` minutes), ``window_min: float``, ``usual: float | None``, ``address: str | None`` and
  ``topic: str | None`` (the building whose callers suggest an incident, if any). ``crm.dispatch``
  notifies the supervisors; the caller commits.
- ``queue.surge_building`` — ``crm.telephony.surge`` during a surge already told, once per surge and building,
  when a building comes to call for an incident (enough of the surge's callers live there, no open incident
  covers it); ``surge_id: str``, ``building_id: int``, ``address: str``, ``topic: str | None``, ``callers: int``,
  ``waiting: int``, ``arrivals: int``, ``window_min: float``. ``crm.dispatch`` notifies the supervisors; the
  caller commits.
- ``auth.repeated_failures`` — ``crm.users.throttle`` at every ``CRM_LOGIN_ALERT_ACCOUNT``-th failed
  sign-in attempt (password or code) against one account, or every ``CRM_LOGIN_ALERT_ADDRESS``-th from one
  address; ``scope: str`` (``account`` or ``address``), ``subject: str`` (the user name typed, or the
  address), ``failures: int``. ``crm.dpo`` raises an alert for the DPO (the throttle commits it).

- ``telephony.caller`` — ``crm.appeals.views`` when the intake is opened from a screen pop
  (``/operator?call=<call record id>``); ``call_id: str``, ``user`` (the signed-in operator). The
  subscriber (``crm.telephony``) returns the caller's number (E.164) only to the operator who answered
  that call, logging the reveal, else None (:func:`ask`).

Add a name here when you add a hook: :func:`fire` refuses names that are not declared, so a typo
fails loudly instead of reaching nobody.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable

HOOKS: frozenset[str] = frozenset({
    "call.transcribed",
    "call.page",
    "call.erased",
    "appeal.transitioned",
    "appeal.clock_breached",
    "appeal.clock_warned",
    "appeal.assigned",
    "appeal.page",
    "appeal.registered",
    "appeal.latest_call",
    "consent.changed",
    "call.api_fields",
    "call.lookup",
    "call.qa_allowed",
    "appeal.lookup",
    "appeal.masking_address",
    "executor.lookup",
    "citizen.export",
    "call.export",
    "citizen.appeal_numbers",
    "retention.activity",
    "retention.active_work",
    "retention.recordings",
    "retention.purpose_expired",
    "audit.checkpoint_restarted",
    "retention.destroy_recordings",
    "incident.closing",
    "incident.proposed",
    "incident.surge_accepted",
    "queue.surge",
    "queue.surge_building",
    "citizen.rectified",
    "telephony.caller",
    "auth.repeated_failures",
})

_subscribers: dict[str, list[Callable[..., Any]]] = defaultdict(list)


class UnknownHook(KeyError):
    """A hook name that is not in :data:`HOOKS`."""


def _check(name: str) -> None:
    if name not in HOOKS:
        raise UnknownHook(f"hook {name!r} is not declared in crm.hooks.HOOKS")


def subscribe(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Call ``func(**kwargs)`` whenever hook ``name`` fires. Subscribing the same function twice is a
    no-op (``init_app`` may run once per application, and tests build several). Returns ``func``.

    Raises :class:`UnknownHook` for an undeclared name."""
    _check(name)
    if func not in _subscribers[name]:
        _subscribers[name].append(func)
    return func


def unsubscribe(name: str, func: Callable[..., Any]) -> None:
    """Stop calling ``func`` for ``name`` (no-op when it was not subscribed)."""
    _check(name)
    if func in _subscribers[name]:
        _subscribers[name].remove(func)


def on(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator form of :func:`subscribe`."""
    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        return subscribe(name, func)
    return decorate


def fire(name: str, **kwargs: Any) -> list[Any]:
    """Run every subscriber of ``name`` with ``kwargs``, in subscription order, and return their
    results. An exception in a subscriber propagates to the caller (whose transaction then rolls
    back): a reaction that is part of the use case must not fail silently.

    Raises :class:`UnknownHook` for an undeclared name."""
    _check(name)
    return [func(**kwargs) for func in list(_subscribers[name])]


def ask(name: str, **kwargs: Any) -> Any:
    """The first result of ``name``'s subscribers that is not None, or None: a lower feature's question
    to a higher one ("which appeal is this id?"). Raises :class:`UnknownHook` for an undeclared name."""
    _check(name)
    for func in list(_subscribers[name]):
        result = func(**kwargs)
        if result is not None:
            return result
    return None


def subscribers(name: str) -> list[Callable[..., Any]]:
    """The functions subscribed to ``name`` (a copy), for tests and ``crm status``."""
    _check(name)
    return list(_subscribers[name])
