"""Satisfaction surveys (CSAT) after an appeal's closure.

**When.** :func:`after_transition` subscribes to ``appeal.transitioned`` (:mod:`crm.csat.hooks`). When an
appeal enters a closing status in which the citizen was told the outcome (:data:`SURVEYED`: «Закрыто», or
«Консультация дана», the closure on the call) and the citizen consents to ``csat_survey``, it queues
:func:`crm.csat.jobs.send_survey_job`, which calls :func:`send_survey`. Consent is asked again right
before sending (:func:`crm.consent.services.may_notify`), so a withdrawal stops the survey even for a job
already queued. One survey per appeal and closure cycle (``reopen_count`` at the closure): a job run twice,
or «консультация дана» followed by the formal «закрыто», sends one SMS.

**The link.** A random token (:func:`new_token`, 144 bits) of which only the SHA-256 is kept; the SMS
outbox keeps the text with the token masked (:func:`crm.consent.sms.send`'s ``secret``). It expires after
``CRM_CSAT_LINK_TTL_S`` (14 days) and works once: :func:`answer` records the answer with a conditional
``UPDATE … WHERE answered_at IS NULL``, so a double submission — even two concurrent ones — records one
answer and the second gets :class:`SurveyError` ``used``. A forged, expired or used link records nothing.

**The answer.** Solved (yes/no), a score 1–5, «впервые ли обращались» (optional; FixMyStreet asks it) and an
optional comment of at most :data:`MAX_COMMENT` characters, encrypted under the citizen's data key like
every free text (erasure shreds it, :mod:`crm.csat.personal_data`). «Не решено» re-opens the appeal
through the appeals' own lifecycle (:func:`crm.appeals.services.transition`: closed → in progress,
consultation given → handed over), in the same transaction as the answer, so its resolution clocks start
a new cycle and the re-opening is counted; if an operator moved the appeal meanwhile, the answer is kept
and nothing is re-opened.

**KPIs.** :func:`kpi_figures` (answers received in a period) and :func:`not_first_contact` (appeals the
citizen said were not solved, or not reported for the first time: they do not count as first-contact
resolutions, :func:`crm.appeals.services.fcr_rate`).
"""
from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, has_request_context, request
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from crm import jobs
from crm.appeals import services as appeals
from crm.citizens import services as citizens
from crm.consent import services as consent
from crm.csat.models import CsatSurvey
from crm.db import db, utcnow
from crm.i18n import lazy_gettext as _l
from crm.security import audit
from crm.timeutil import local_tz

log = logging.getLogger(__name__)

PURPOSE = "csat_survey"
#: Closing statuses after which the citizen is asked (rejected and duplicate appeals are not surveyed:
#: nothing was solved for them, and a duplicate's work goes on under its original).
SURVEYED = ("closed", "consulted")
#: «Не решено» re-opens the appeal: from the status it was closed in to the one the lifecycle table allows
#: (crm.appeals.catalog.REOPEN).
REOPEN_TO = {"closed": "in_progress", "consulted": "escalated"}
MAX_COMMENT = 1000
#: The job that sends a survey (named, not imported: crm.csat.jobs imports this module).
SEND_JOB = "crm.csat.jobs.send_survey_job"
#: The citizen answering on the survey page (no account): the access log's actor.
CITIZEN = audit.Actor(None, "citizen:csat", "citizen")
SENDER = "send_csat_survey"
REOPEN_COMMENT = "Заявитель ответил в опросе удовлетворённости: проблема не решена. Обращение открыто снова."


class SurveyError(ValueError):
    """A survey link refused (nothing recorded); ``code``: ``forged``, ``expired``, ``used``, ``erased``,
    ``withdrawn`` (the citizen withdrew the ``csat_survey`` consent after the link was sent).
    The message is Russian, for the citizen."""

    def __init__(self, message, code: str):
        super().__init__(message)
        self.code = code


class AnswerError(ValueError):
    """A bad answer (``field`` names it); nothing recorded."""

    def __init__(self, message, field: str):
        super().__init__(message)
        self.field = field


# --- the link -----------------------------------------------------------------------------------------

def new_token() -> str:
    """A random link token (URL-safe, 24 characters, 144 bits)."""
    return secrets.token_urlsafe(18)


def token_hash(token: str) -> str:
    """What the database keeps of a token: its SHA-256, hex (the token is random: no key is needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def link_ttl_s() -> int:
    return int(current_app.config["CRM_CSAT_LINK_TTL_S"])


def public_base() -> str | None:
    """Scheme and host citizens can reach: ``CRM_PUBLIC_URL``, else the current request's, else None."""
    base = current_app.config["CRM_PUBLIC_URL"]
    if not base and has_request_context():
        base = request.url_root
    return base.rstrip("/") if base else None


def survey_url(base: str, token: str) -> str:
    """The page's address for ``token`` (:mod:`crm.csat.views`: ``/csat/<token>``)."""
    return f"{base.rstrip('/')}/csat/{token}"


def sms_text(number: str, url: str, until: datetime) -> str:
    """The survey SMS for appeal ``number``."""
    day = until.astimezone(local_tz()).strftime("%d.%m.%Y")
    return (f"Горячая линия ЖКХ: заявка № {number} закрыта. Ответьте, пожалуйста, на 3 вопроса о том, как решён "
            f"вопрос: {url} (ссылка одноразовая, до {day}).")


# --- sending --------------------------------------------------------------------------------------------

def after_transition(appeal_id: str, new: str, **_: object) -> None:
    """Subscriber of ``appeal.transitioned`` (after the transition's commit): queue the survey when the
    appeal entered a status of :data:`SURVEYED` and the citizen consents now. Never raises (a survey must
    not undo a closure); without Redis the survey is sent in-process."""
    if new not in SURVEYED:
        return
    try:
        appeal = appeals.get(appeal_id)
        if appeal is None or not consent.may_notify(appeal.citizen_id, PURPOSE):
            return
        base, cycle = public_base(), appeal.reopen_count
        try:
            jobs.enqueue(SEND_JOB, appeal.id, cycle, base)
        except Exception:  # redis unavailable
            send_survey(appeal.id, cycle, base)
    except Exception:
        db.session.rollback()
        log.exception("CSAT survey for appeal %s not queued", appeal_id)


def send_survey(appeal_id: str, cycle: int, base_url: str | None) -> str:
    """Send the survey of closure ``cycle`` of appeal ``appeal_id``: a survey row and an SMS with its
    link, if the appeal is still closed in that cycle and the citizen's ``csat_survey`` consent allows it
    now. Safe to run twice (one survey per appeal and cycle). ``base_url``: see :func:`public_base`
    (``CRM_PUBLIC_URL`` is preferred when set).

    Returns ``sent``, ``missing``, ``not_closed`` (re-opened before the job ran), ``already_sent``,
    ``no_consent``, ``no_public_url`` or ``no_phone``. A gateway error removes the survey row (its link
    was never delivered) and is re-raised, so the job's retry sends a new one."""
    appeal = appeals.get(appeal_id)
    if appeal is None:
        return "missing"
    if appeal.status not in SURVEYED or appeal.reopen_count != cycle:
        return "not_closed"
    if _survey_of(appeal.id, cycle) is not None:
        return "already_sent"
    if not consent.may_notify(appeal.citizen_id, PURPOSE):
        return "no_consent"
    base = current_app.config["CRM_PUBLIC_URL"] or base_url
    if not base:
        log.warning("CSAT survey for appeal %s not sent: set CRM_PUBLIC_URL", appeal.id)
        return "no_public_url"
    citizen = citizens.get(appeal.citizen_id)
    now = utcnow()
    token = new_token()
    survey = CsatSurvey(appeal_id=appeal.id, citizen_id=appeal.citizen_id, cycle=cycle, closed_status=appeal.status,
                        token_hash=token_hash(token), created_at=now, expires_at=now + timedelta(seconds=link_ttl_s()))
    db.session.add(survey)
    try:
        db.session.flush()
    except IntegrityError:  # a concurrent run of the same job
        db.session.rollback()
        return "already_sent"
    try:
        msg = consent.send_sms(citizen, purpose=PURPOSE, kind="survey",
                               body=sms_text(appeal.number, survey_url(base, token), survey.expires_at),
                               appeal_id=appeal.id, actor=audit.system_actor(SENDER), secret=token)
    except Exception:
        db.session.rollback()
        db.session.execute(db.delete(CsatSurvey).where(CsatSurvey.id == survey.id))
        db.session.commit()
        raise
    if msg is None:
        db.session.rollback()
        return "no_phone"
    survey.sms_id = msg.id
    db.session.commit()
    return "sent"


def _survey_of(appeal_id: str, cycle: int) -> CsatSurvey | None:
    return db.session.execute(select(CsatSurvey).where(CsatSurvey.appeal_id == appeal_id,
                                                       CsatSurvey.cycle == cycle)).scalar_one_or_none()


# --- the citizen's answer -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """A checked answer: ``solved``, ``score`` 1–5, ``first_time`` (None: not answered), ``comment``
    (None: none)."""

    solved: bool
    score: int
    first_time: bool | None
    comment: str | None


def checked(*, solved, score, first_time=None, comment=None) -> Answer:
    """The answer from the form's values; raises :class:`AnswerError` naming the field."""
    if not isinstance(solved, bool):
        raise AnswerError(_l("Ответьте, решена ли проблема."), "solved")
    try:
        score = int(score)
    except (TypeError, ValueError):
        score = 0
    if not 1 <= score <= 5:
        raise AnswerError(_l("Поставьте оценку от 1 до 5."), "score")
    if first_time is not None and not isinstance(first_time, bool):
        raise AnswerError(_l("Ответьте «да» или «нет»."), "first_time")
    text = (comment or "").strip()
    if len(text) > MAX_COMMENT:
        raise AnswerError(_l("Комментарий длиннее %(n)s символов.", n=MAX_COMMENT), "comment")
    return Answer(solved, score, first_time, text or None)


def check(token: str) -> CsatSurvey:
    """The survey behind a link, still answerable; raises :class:`SurveyError` (``forged``, ``expired``,
    ``used``, ``erased``, ``withdrawn``: the ``csat_survey`` consent is no longer in force). Records nothing."""
    survey = None
    if isinstance(token, str) and 10 <= len(token) <= 64:
        survey = db.session.execute(select(CsatSurvey).where(
            CsatSurvey.token_hash == token_hash(token))).scalar_one_or_none()
    if survey is None:
        raise SurveyError(_l("Ссылка недействительна. Проверьте, что она скопирована из SMS полностью."), "forged")
    if survey.answered_at is not None:
        raise SurveyError(_l("На этот опрос уже ответили: ссылка одноразовая. Спасибо за ваш ответ!"), "used")
    if survey.expires_at <= utcnow():
        raise SurveyError(_l("Срок действия ссылки истёк: опрос по этой заявке закрыт."), "expired")
    citizen = citizens.get(survey.citizen_id)
    if citizen is None or citizen.erased_at is not None:
        raise SurveyError(_l("Данные заявителя уничтожены: опрос закрыт."), "erased")
    if not consent.may_notify(survey.citizen_id, PURPOSE):  # withdrawn since the link was sent: no answer taken
        raise SurveyError(_l("Согласие на участие в опросе отозвано: ответ не записывается."), "withdrawn")
    return survey


def appeal_number(survey: CsatSurvey) -> str | None:
    """The number of the surveyed appeal (shown on the page; no personal data)."""
    appeal = appeals.get(survey.appeal_id)
    return appeal.number if appeal is not None else None


def answer(token: str, ans: Answer) -> CsatSurvey:
    """Record the citizen's answer to the survey of ``token`` and use the link up, in one transaction;
    «не решено» re-opens the appeal in it (see the module's docstring). Logged as ``csat.answer`` under
    the citizen (:data:`CITIZEN`), the comment named as a field, never its text. Returns the survey.
    Raises :class:`SurveyError` (nothing recorded)."""
    with audit.acting_as(CITIZEN):
        survey = check(token)
        target = None if ans.solved else _reopen_target(survey)
        _claim(survey, ans, reopened=target is not None)
        if target is not None:
            try:
                appeals.transition(appeals.get(survey.appeal_id), target, comment=REOPEN_COMMENT,
                                   expected_status=survey.closed_status)  # commits the answer with it
                return survey
            except appeals.AppealError:  # moved meanwhile: rolled back, answer without the re-opening
                survey = check(token)
                _claim(survey, ans, reopened=False)
        db.session.commit()
        return survey


def _reopen_target(survey: CsatSurvey) -> str | None:
    """The status «не решено» re-opens the appeal to, if it is still closed in the surveyed cycle."""
    appeal = appeals.get(survey.appeal_id)
    if appeal is None or appeal.status != survey.closed_status or appeal.reopen_count != survey.cycle:
        return None
    return REOPEN_TO.get(appeal.status)


def _claim(survey: CsatSurvey, ans: Answer, *, reopened: bool) -> None:
    """Write the answer if nobody did first (conditional UPDATE; the row stays locked until the commit),
    the comment (encrypted) and the log entry; no commit. Raises :class:`SurveyError` ``used``."""
    now = utcnow()
    done = db.session.execute(
        update(CsatSurvey).where(CsatSurvey.id == survey.id, CsatSurvey.answered_at.is_(None),
                                 CsatSurvey.expires_at > now)
        .values(answered_at=now, solved=ans.solved, score=ans.score, first_time=ans.first_time, reopened=reopened)
        .execution_options(synchronize_session=False)).rowcount
    if done != 1:
        db.session.rollback()
        raise SurveyError(_l("На этот опрос уже ответили: ссылка одноразовая. Спасибо за ваш ответ!"), "used")
    db.session.expire(survey)
    if ans.comment:
        survey.comment = ans.comment
    audit.record("csat.answer", citizen_id=survey.citizen_id, appeal_id=survey.appeal_id,
                 fields=["csat_comment"] if ans.comment else [], purpose=PURPOSE, actor=CITIZEN,
                 detail=f"survey {survey.id}; solved={'yes' if ans.solved else 'no'}; score={ans.score}"
                        f"{'; reopened' if reopened else ''}")
    db.session.flush()


# --- staff: the appeal page -----------------------------------------------------------------------------

#: Roles that see the citizen's answer on the appeal page (an executor's account does not).
STAFF_ROLES = ("operator", "supervisor", "admin")


def for_appeal(appeal_id: str) -> list[CsatSurvey]:
    """The appeal's surveys, oldest first (no decryption)."""
    return list(db.session.execute(select(CsatSurvey).where(CsatSurvey.appeal_id == appeal_id)
                                   .order_by(CsatSurvey.created_at)).scalars())


def appeal_panel(appeal, user) -> dict | None:
    """The appeal page's «Опрос удовлетворённости» section for staff (:data:`STAFF_ROLES`), or None when
    no survey was sent. Each survey's answer with its comment decrypted; showing a comment is logged as
    ``csat.view`` (field ``csat_comment``, purpose ``appeal_processing``). Commits when it logs."""
    if getattr(user, "role", None) not in STAFF_ROLES:
        return None
    surveys = for_appeal(appeal.id)
    if not surveys:
        return None
    rows = [{"survey": s, "comment": s.comment if s.comment_enc is not None else None} for s in surveys]
    shown = [r for r in rows if r["comment"] is not None]
    if shown:
        audit.record("csat.view", citizen_id=appeal.citizen_id, appeal_id=appeal.id, fields=["csat_comment"],
                     purpose="appeal_processing", detail=f"{len(shown)} survey comments")
        db.session.commit()
    return {"template": "csat/_panel.html", "surveys": rows}


def export_for_citizen(citizen_id: str, *, purpose: str, erased: bool) -> list[dict]:
    """The citizen's survey answers for an access export (152-ФЗ ст. 14), oldest first: ``[{"appeal"
    (number), "sent_at", "answered_at", "solved", "score", "first_time", "comment"}]``; the comments are
    decrypted unless ``erased``, and their read is logged as ``csat.view`` for ``purpose`` (no commit: the
    export commits)."""
    out = []
    for s in db.session.execute(select(CsatSurvey).where(CsatSurvey.citizen_id == citizen_id)
                                .order_by(CsatSurvey.created_at)).scalars():
        appeal = appeals.get(s.appeal_id)
        out.append({"appeal": appeal.number if appeal is not None else None, "sent_at": s.created_at.isoformat(),
                    "answered_at": s.answered_at.isoformat() if s.answered_at else None, "solved": s.solved,
                    "score": s.score, "first_time": s.first_time,
                    "comment": None if erased or s.comment_enc is None else s.comment})
    read = sum(1 for row in out if row["comment"] is not None)
    if read:
        audit.record("csat.view", citizen_id=citizen_id, fields=["csat_comment"], purpose=purpose,
                     detail=f"{read} survey comments (export)")
    return out


# --- KPIs -----------------------------------------------------------------------------------------------

def kpi_figures(start: datetime, end: datetime) -> dict:
    """The CSAT figures of the answers received in ``[start, end)`` (aware UTC), for crm.reports:
    ``csat_avg`` (mean score 1–5, 2 decimals), ``csat_responses``, ``csat_solved_rate`` (share answering
    «решено», 0–1), ``csat_first_time_rate`` (of those who answered that question, the share reporting
    the problem for the first time) and ``csat_surveys_sent`` (links sent in the period). Ratios and the
    mean are None when there is nothing to divide. No decryption."""
    answered = (CsatSurvey.answered_at >= start, CsatSurvey.answered_at < end)
    n, avg, solved, asked_first, first = db.session.execute(select(
        func.count(), func.avg(CsatSurvey.score),
        func.count().filter(CsatSurvey.solved.is_(True)),
        func.count(CsatSurvey.first_time),
        func.count().filter(CsatSurvey.first_time.is_(True))).where(*answered)).one()
    sent = db.session.execute(select(func.count()).select_from(CsatSurvey).where(
        CsatSurvey.created_at >= start, CsatSurvey.created_at < end)).scalar_one()
    return {
        "csat_avg": round(float(avg), 2) if n else None,
        "csat_responses": int(n),
        "csat_solved_rate": round(solved / n, 4) if n else None,
        "csat_first_time_rate": round(first / asked_first, 4) if asked_first else None,
        "csat_surveys_sent": int(sent),
    }


def not_first_contact():
    """``SELECT appeal_id`` of the appeals whose citizen answered «не решено» or «обращался не впервые»:
    they are not first-contact resolutions (:func:`crm.appeals.services.fcr_rate`'s ``not_first_contact``)."""
    return select(CsatSurvey.appeal_id).where(or_(CsatSurvey.solved.is_(False), CsatSurvey.first_time.is_(False)))


def forget_comments(citizen_id: str) -> int:
    """Clear the comments of the citizen's answered surveys (the free text is the personal data the
    ``csat_survey`` consent covered); solved, score and first-time stay as statistics. Commits;
    returns how many comments were cleared. Logged (``csat.forget``) when there were any."""
    result = db.session.execute(update(CsatSurvey).where(CsatSurvey.citizen_id == citizen_id,
                                                         CsatSurvey.comment_enc.isnot(None)).values(comment_enc=None))
    n = result.rowcount or 0
    if n:
        audit.record("csat.forget", citizen_id=citizen_id, fields=["comment"], purpose=PURPOSE,
                     detail=f"{n} survey comment(s) cleared after the consent was withdrawn",
                     actor=audit.system_actor("csat_withdrawal"))
    db.session.commit()
    return n


def expire_comments(purpose: str, before, dry_run: bool = False, actor: audit.Actor | None = None, **_: object) -> int:
    """``retention.purpose_expired``: the comments of surveys answered before ``before`` (aware UTC, the
    start of the ``csat_survey`` purpose's retention period, 365 days by the register) are cleared,
    solved, score and first-time staying as statistics (152-ФЗ ст. 5 ч. 7: kept no longer than the
    purpose needs; before, only a withdrawal or erasure cleared them). Returns how many comments were
    (``dry_run``: would be) cleared; each citizen's clearing logged (``csat.forget``); commits. Other
    purposes: 0."""
    if purpose != PURPOSE:
        return 0
    cond = (CsatSurvey.comment_enc.isnot(None), CsatSurvey.answered_at < before)
    rows = db.session.execute(select(CsatSurvey.citizen_id, func.count()).where(*cond)
                              .group_by(CsatSurvey.citizen_id)).all()
    total = sum(n for _, n in rows)
    if dry_run or not total:
        return total
    db.session.execute(update(CsatSurvey).where(*cond).values(comment_enc=None))
    for citizen_id, n in rows:
        audit.record("csat.forget", citizen_id=citizen_id, fields=["comment"], purpose=PURPOSE,
                     detail=f"{n} survey comment(s) cleared: the retention period ended",
                     actor=actor or audit.system_actor("retention"))
    db.session.commit()
    return total


def after_consent_change(citizen_id: str, purpose: str, status: str, **_: object) -> None:
    """``consent.changed``: a withdrawn ``csat_survey`` consent clears the comments already given
    (152-ФЗ ст. 9 ч. 2: processing on consent stops with its withdrawal). Never raises (the
    withdrawal is committed already); a failure is logged and the retention run is the safety net."""
    if purpose != PURPOSE or status != "withdrawn":
        return
    try:
        forget_comments(citizen_id)
    except Exception:
        db.session.rollback()
        log.exception("survey comments of citizen %s not cleared after the withdrawal", citizen_id)
