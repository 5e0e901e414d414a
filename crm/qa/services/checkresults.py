"""Automatic check results (:mod:`crm.qa.checks`) stored per call: computed once the transcript
is saved (the ``call.transcribed`` hook), read by reviewers, sampling and the API. The call scripts
of the knowledge base that apply to the call (the general ones and those of its appeal's topic,
:func:`crm.kb.services.script_lines_for`) are what the script checks look for, as they read when the
checks run."""
from __future__ import annotations

from datetime import date

from flask import current_app
from sqlalchemy.exc import IntegrityError

from crm.appeals import services as appeals
from crm.calls import services as calls
from crm.db import db
from crm.errors import NotFound
from crm.i18n import lazy_gettext as _l
from crm.kb import services as kb
from crm.qa import checks
from crm.qa.models import CheckResult
from crm.qa.services.common import TRANSCRIBED, qa_permitted
from crm.security import audit
from crm.timeutil import day_start


# --- automatic checks ------------------------------------------------------------------------------

PHRASE_CHECKS = ("greeting", "closing", "address", "callback_number", "forbidden_phrases")


def _check_overrides() -> dict:
    """``CRM_QA_CHECKS``, with each phrase check's ``unsure_p`` defaulting to ``CRM_WORD_UNSURE_P`` (the
    probability under which the transcript page marks a word as doubtful) and the greeting's
    ``hotline_name`` to ``CRM_HOTLINE_NAME`` (the name the vocabulary prompt makes the recogniser write:
    it names the line, and says a script line that names it)."""
    overrides = {code: dict(v) for code, v in current_app.config["CRM_QA_CHECKS"].items() if isinstance(v, dict)}
    for code in PHRASE_CHECKS:
        overrides.setdefault(code, {}).setdefault("unsure_p", float(current_app.config["CRM_WORD_UNSURE_P"]))
    overrides["greeting"].setdefault("hotline_name", current_app.config["CRM_HOTLINE_NAME"] or "")
    return overrides


def script_lines(call_id: str) -> list[dict]:
    """The checked lines of the call scripts for the call (:func:`crm.kb.services.script_lines_for`
    with the topic of the call's appeal; a call in no appeal gets the general scripts only)."""
    call = calls.get(call_id)
    appeal = appeals.get(call.appeal_id) if call is not None and call.appeal_id else None
    return kb.script_lines_for(appeal.topic if appeal is not None else None)


def store_checks(call_id: str, segments: list[dict]) -> list[dict]:
    """Run the automatic checks over ``segments`` (``{start, end, speaker, text}``) with the call's
    script lines (:func:`script_lines`) and replace the call's stored results; returns them
    (``[{code, passed, detail, value, at_s}]``). Commits."""
    results = checks.run(segments, _check_overrides(), script_lines(call_id))
    db.session.execute(db.delete(CheckResult).where(CheckResult.call_id == call_id))
    for r in results:
        db.session.add(CheckResult(call_id=call_id, code=r["code"], passed=r["passed"], state=r.get("state"),
                                   detail=r["detail"], value=r["value"], at_s=r["at_s"]))
    db.session.commit()
    return results


def forget_check_details(call_id: str, *, commit: bool = True) -> int:
    """Empty the details of the call's stored check results (they can quote the citizen's words);
    returns how many rows held one. Commits unless ``commit`` is False."""
    result = db.session.execute(db.update(CheckResult).where(CheckResult.call_id == call_id, CheckResult.detail != "")
                                .values(detail=""))
    if commit:
        db.session.commit()
    return result.rowcount or 0


def after_transcript(call_id: str, segments: list[dict]) -> list[dict] | None:
    """Hook for the transcription job once the transcript is saved: store the automatic checks.
    ``segments`` are as stored (:func:`crm.calls.services.save_transcript`: numbers in digits, the same
    segments :func:`recheck` reads; plaintext in the job's memory, nothing is decrypted again).
    A failure is logged and leaves the call as it is (the API computes the checks on first read).
    Nothing is run for a call that may not be used for quality control (:func:`qa_permitted`: no
    citizen yet, or no QA consent): the checks are QA processing of the recording, and their details
    can quote what was said; they are computed on first read once the call passes the gate.
    Returns the stored results (:func:`store_checks`), or None when nothing was stored (refused by
    the gate, or failed). :func:`recheck` stores through here too."""
    if not qa_permitted(calls.get(call_id)):
        return None
    try:
        return store_checks(call_id, [dict(s) for s in segments])
    except Exception:  # the transcript is saved; the checks are a hint
        db.session.rollback()
        current_app.logger.exception("automatic QA checks failed for call %s", call_id)
        return None


#: What :func:`recheck` did with a call: stored results that differ from the old ones, stored the same
#: ones again, skipped it (no transcript: not transcribed, erased with its citizen, or destroyed after a
#: QA-consent withdrawal; no QA consent: the gate, :func:`qa_permitted`), or failed (logged).
RECHECK_OUTCOMES = ("changed", "unchanged", "no_transcript", "no_consent", "failed")
#: The access log's actor of a recheck's transcript reads (``job:qa_recheck``).
RECHECK_ACTOR = "qa_recheck"


def _as_stored(results: list[dict]) -> list[tuple]:
    """What a recheck compares of a call's stored results: each check's code, state, detail, value, place."""
    return sorted((r["code"], bool(r["passed"]), r.get("state"), r["detail"], r["value"], r["at_s"]) for r in results)


def recheck(call_id: str) -> str:
    """Recompute the automatic checks of the call ``call_id`` from its stored transcript (no audio, no
    re-transcription) with today's configuration and call scripts, and store them as the transcription
    job does (:func:`after_transcript`). Returns one of :data:`RECHECK_OUTCOMES`. A call is skipped as
    the QA pipeline skips it, nothing decrypted: without a transcript (not ``done``/``no_speech``, its
    citizen's data erased, :func:`crm.calls.services.is_erased`, or its recording and transcript
    destroyed after a QA-consent withdrawal), and without the QA consent (:func:`qa_permitted`, which
    :func:`after_transcript` and :func:`checks_for_call` ask too). The transcript's read is logged
    (``transcript.view``, actor ``job:qa_recheck``). Safe to run again: the same transcript, configuration and
    scripts give the same results (``unchanged``). Raises :class:`crm.errors.NotFound` for an unknown id."""
    call = calls.get(call_id)
    if call is None:
        raise NotFound(_l("звонок не найден"))
    if call.status not in TRANSCRIBED or calls.is_erased(call) or calls.recording_destroyed(call):
        return "no_transcript"
    if not qa_permitted(call):
        return "no_consent"
    before = _as_stored(check_results(call_id))
    segments = calls.stored_segments(call, actor=audit.system_actor(RECHECK_ACTOR),
                                     detail="automatic QA checks recomputed (crm qa recheck)")
    if segments is None:
        return "no_transcript"
    if after_transcript(call_id, segments) is None:
        return "failed"
    return "unchanged" if _as_stored(check_results(call_id)) == before else "changed"


def recheck_calls(*, call_id: str | None = None, since: date | None = None) -> dict[str, int]:
    """:func:`recheck` the call ``call_id``, or the calls made on or after the day ``since`` (in
    ``CRM_TIMEZONE``), or, with neither, every call; one transaction per call, oldest first. Returns how
    many calls had each outcome (``{outcome: n}`` for every one of :data:`RECHECK_OUTCOMES`); a call
    whose recheck raises is rolled back, logged and counted ``failed``, and the others go on. Raises
    :class:`crm.errors.NotFound` for an unknown ``call_id``."""
    if call_id is not None and calls.get(call_id) is None:
        raise NotFound(_l("звонок не найден"))
    ids = [call_id] if call_id is not None else calls.ids_made_since(day_start(since) if since else None)
    counts = dict.fromkeys(RECHECK_OUTCOMES, 0)
    for cid in ids:
        try:
            outcome = recheck(cid)
        except Exception:  # e.g. a transcript that no longer decrypts: the other calls go on
            db.session.rollback()
            current_app.logger.exception("recheck of the automatic QA checks failed for call %s", cid)
            outcome = "failed"
        counts[outcome] += 1
    return counts


def check_results(call_id: str) -> list[dict]:
    """Stored results of the call, in :data:`crm.qa.checks.CODES` order."""
    rows = db.session.execute(db.select(CheckResult).where(CheckResult.call_id == call_id)).scalars().all()
    order = {c: i for i, c in enumerate(checks.CODES)}
    return [{"code": r.code, "passed": r.passed, "state": r.state or ("passed" if r.passed else "failed"),
             "detail": r.detail, "value": r.value, "at_s": r.at_s,
             "label": checks.LABELS.get(r.code, r.code), "criterion": checks.HINT_CRITERIA.get(r.code)}
            for r in sorted(rows, key=lambda r: order.get(r.code, 99))]


def checks_for_call(call: calls.Call, segments: list[dict]) -> list[dict]:
    """``qa_checks`` of ``GET /api/v1/calls/{id}``: ``[{code, passed, state, detail}]`` once the call is
    transcribed (``[]`` before), codes ``greeting`` and ``closing`` among them. Stored results
    are used; a call transcribed before they existed gets them computed from ``segments`` (already
    decrypted and logged by the caller) and stored; never for a call whose data were erased
    (:func:`crm.calls.services.is_erased`: no transcript to compute them from); ``[]`` for a call
    that does not pass the QA-consent gate (:func:`qa_permitted`), stored results or not."""
    if call.status not in TRANSCRIBED or not qa_permitted(call):
        return []
    stored = check_results(call.id)
    if not stored and not calls.is_erased(call):
        try:
            stored = store_checks(call.id, segments)
        except IntegrityError:  # a concurrent reader stored them first
            db.session.rollback()
            stored = check_results(call.id)
    return [{"code": r["code"], "passed": r["passed"], "state": r.get("state") or ("passed" if r["passed"] else "failed"),
             "detail": r["detail"]} for r in stored]
