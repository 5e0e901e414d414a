"""Retention: find data kept past its purpose's retention period (the register's ``retention_days``)
or past a withdrawal, destroy or de-identify it, and leave a report for the DPO (152-ФЗ ст. 5 ч. 7:
kept no longer than the purpose needs; ст. 21 ч. 4–5: destroyed within 30 days once the purpose is
achieved or consent withdrawn).

One run (:func:`run`, the periodic job :func:`crm.consent.jobs.retention_job`, ``crm consent
retention``):

- ``appeal_processing``: a citizen whose last activity (registration, appeal created, resolved or
  closed, call, consent event) is older than the period and who has no appeal still being worked
  on is crypto-shredded with :func:`crm.security.shredding.erase_citizen`; a destruction act is made.
  De-identified statistics stay (appeal categories, dates, SLA).
- ``sms_notifications`` / ``csat_survey``: outbox messages older than the period lose their number
  and text; so do the purpose's messages of a citizen who withdrew consent, which closes that
  withdrawal request. What the features keep for these purposes past the period is cleared through
  the ``retention.purpose_expired`` hook (the CSAT survey comments, :func:`crm.csat.services.expire_comments`).
- one-time codes and self-service links in the outbox: cleared after :data:`ACCESS_MESSAGES_DAYS`.
- self-service grants (codes, links, decoys) deleted :data:`GRANTS_KEPT_AFTER_EXPIRY` after they
  expired (:func:`purge_grants`), so the table stays small and a code request takes the same time
  however many were made before.
- ``call_recording_qa``: a withdrawn consent destroys the citizen's recordings and transcripts kept
  only for QA (the ``retention.destroy_recordings`` hook, :func:`crm.calls.services.destroy_qa_recordings`:
  a destruction record and act each; a job does it at once on the withdrawal, this run is the safety
  net); recordings past the period are counted and reported as *pending*.

The features' own tables are asked through hooks (:mod:`crm.hooks`: ``retention.activity``,
``retention.active_work``, ``retention.recordings``, ``retention.destroy_recordings``), answered in
``crm/<feature>/hooks.py``. :func:`recording_destructions` lists the destruction records of
recordings for the DPO's retention page.

Every step is idempotent: a run that dies half-way is finished by the next one.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import sqlalchemy as sa

from crm import hooks
from crm.citizens import services as citizens
from crm.consent.models import ConsentEvent, DataSubjectRequest, RetentionRun, SelfServiceGrant, SmsMessage
from crm.db import db, utcnow
from crm.security import audit
from crm.consent import rights
from crm.consent import services as consent
from crm.security.models import DestructionRecord
from crm.security.shredding import ErasureError, erase_citizen

ACCESS_MESSAGES_DAYS = 30
#: How long a self-service grant is kept after it expired: longer than the hourly limit of code
#: requests counts back, and than a self-service session lasts.
GRANTS_KEPT_AFTER_EXPIRY = timedelta(days=1)
MESSAGE_PURPOSES = ("sms_notifications", "email_notifications", "csat_survey")
BATCH = 500


def _last_activity():
    """``SELECT citizen_id, max(activity)`` over what shows contact with a citizen: the registration,
    the consent events, and what the features answer to the ``retention.activity`` hook (appeals
    created, resolved, closed; calls)."""
    parts = [citizens.registrations_select(), sa.select(ConsentEvent.citizen_id, ConsentEvent.at)]
    parts += [q for found in hooks.fire("retention.activity") for q in found]
    u = sa.union_all(*parts).subquery()
    cid, at = u.c[0], u.c[1]
    return sa.select(cid.label("cid"), sa.func.max(at).label("last")).group_by(cid).subquery()


def purge_grants(now: datetime, *, dry_run: bool = False) -> int:
    """Delete the self-service grants that expired more than :data:`GRANTS_KEPT_AFTER_EXPIRY` before
    ``now``: the decoys of codes asked for numbers nobody has (never purged before, they made the
    hourly count of :func:`crm.consent.selfservice.request_code` slower as they piled up) and real
    codes and links, used or not. A grant named by an access request as its identity check
    (``verification_grant_id``) is kept as evidence. Returns how many (would be) deleted; commits."""
    evidence = sa.select(DataSubjectRequest.verification_grant_id).where(
        DataSubjectRequest.verification_grant_id.isnot(None))
    cond = (SelfServiceGrant.expires_at < now - GRANTS_KEPT_AFTER_EXPIRY) & SelfServiceGrant.id.notin_(evidence)
    if dry_run:
        return db.session.execute(sa.select(sa.func.count()).select_from(SelfServiceGrant).where(cond)).scalar_one()
    n = db.session.execute(sa.delete(SelfServiceGrant).where(cond)).rowcount
    db.session.commit()
    return n


def expired_citizens(days: int, now: datetime, limit: int = BATCH) -> tuple[list[tuple[str, datetime]], int]:
    """``([(citizen_id, last activity)], blocked)``: citizens not erased whose last activity is older
    than ``days``, without work still in progress (an appeal being worked on: the features' answers
    to the ``retention.active_work`` hook); ``blocked`` counts those skipped for such work."""
    cutoff = now - timedelta(days=days)
    last = _last_activity()
    live = citizens.live_ids_select().subquery()
    busy = [q for found in hooks.fire("retention.active_work") for q in found]
    active = live.c[0].in_(sa.union_all(*busy)) if busy else sa.false()
    base = sa.select(live.c[0], last.c.last).join(last, last.c.cid == live.c[0]).where(last.c.last < cutoff)
    rows = db.session.execute(base.where(~active).order_by(last.c.last).limit(limit)).all()
    blocked = db.session.execute(sa.select(sa.func.count()).select_from(base.where(active).subquery())).scalar_one()
    return [(r[0], r[1]) for r in rows], blocked


def _clear(messages: list[SmsMessage], now: datetime) -> int:
    n = 0
    for m in messages:
        if m.to_masked is not None or m.body is not None or m.body_enc is not None:
            m.to_masked = m.body = m.body_enc = None
            m.deidentified_at = now
            n += 1
    return n


def _old_messages(purposes: tuple[str, ...], before: datetime) -> list[SmsMessage]:
    return list(db.session.execute(db.select(SmsMessage).where(
        SmsMessage.purpose.in_(purposes), SmsMessage.created_at < before, SmsMessage.deidentified_at.is_(None))
        .limit(10 * BATCH)).scalars())


def run(*, now: datetime | None = None, dry_run: bool = False, actor: audit.Actor | None = None) -> RetentionRun:
    """One retention run; returns its :class:`~crm.consent.models.RetentionRun` (committed) with the
    report. ``dry_run``: find and count, change nothing (the report says what would happen)."""

    now = now or utcnow()
    actor = actor or audit.system_actor("retention")
    run_row = RetentionRun(started_at=utcnow(), actor=actor.name[:80], dry_run=dry_run, report={})
    db.session.add(run_row)
    db.session.commit()
    report: dict = {"purposes": {}, "erased_citizens": [], "acts": [], "overdue_requests": [], "closed_requests": [],
                    "now": now.isoformat()}
    regs = {p.code: p for p in consent.purposes()}

    # 1. appeals: the citizen as a whole
    p = regs.get("appeal_processing")
    if p is not None:
        found, blocked = expired_citizens(p.retention_days, now)
        entry = {"found": len(found), "erased": 0, "deidentified": 0, "pending": blocked,
                 "note": f"срок {p.retention_days} дн. после последнего обращения"
                         + (f"; {blocked} с незакрытыми обращениями пропущены" if blocked else "")}
        for citizen_id, last in found:
            if dry_run:
                continue
            reason = (f"истёк срок хранения по цели «{p.name_ru}»: {p.retention_days} дн. после последнего "
                      f"обращения ({last.date().isoformat()}); 152-ФЗ ст. 5 ч. 7, ст. 21 ч. 4")
            try:
                rights._clear_outbox(citizen_id)
                record = erase_citizen(citizen_id, reason, actor=actor)
            except ErasureError as exc:
                db.session.rollback()
                entry["pending"] += 1
                entry.setdefault("errors", []).append(f"{citizen_id}: {exc}")
                continue
            act = rights.make_act(record, request=None, requested_by=actor, approved_by=None,
                                  legal_basis="152-ФЗ ст. 5 ч. 7, ст. 21 ч. 4 (истечение срока хранения)")
            entry["erased"] += 1
            report["erased_citizens"].append(citizen_id)
            report["acts"].append(act.number)
        report["purposes"]["appeal_processing"] = entry

    # 2. messages past their period
    for code in MESSAGE_PURPOSES:
        p = regs.get(code)
        if p is None:
            continue
        cutoff = now - timedelta(days=p.retention_days)
        old = _old_messages((code,), cutoff)
        n = 0 if dry_run else _clear(old, now)
        # what the features keep for the purpose (the CSAT survey comments), cleared past the same period
        held = sum(hooks.fire("retention.purpose_expired", purpose=code, before=cutoff, dry_run=dry_run, actor=actor))
        report["purposes"][code] = {"found": len(old) + held, "erased": 0, "deidentified": n + (0 if dry_run else held),
                                    "pending": 0,
                                    "note": f"SMS старше {p.retention_days} дн.: номер и текст удаляются"
                                            + (f"; прочие данные цели ({held}) очищены" if held else "")}
    old = _old_messages((consent.DSR_PURPOSE,), now - timedelta(days=ACCESS_MESSAGES_DAYS))
    report["purposes"][consent.DSR_PURPOSE] = {
        "found": len(old), "erased": 0, "deidentified": 0 if dry_run else _clear(old, now), "pending": 0,
        "note": f"коды и ссылки самообслуживания старше {ACCESS_MESSAGES_DAYS} дн."}

    # 2b. self-service grants past their life (decoys and real ones)
    report["purged_grants"] = purge_grants(now, dry_run=dry_run)

    # 3. withdrawals: destroy what the purpose holds, close the request when nothing is left
    withdrawals = db.session.execute(db.select(DataSubjectRequest).where(
        DataSubjectRequest.type == "withdrawal", DataSubjectRequest.status == "open")).scalars().all()
    qa_withdrawals: list[str] = []
    for req in withdrawals:
        if req.purpose_code in MESSAGE_PURPOSES:
            msgs = list(db.session.execute(db.select(SmsMessage).where(
                SmsMessage.citizen_id == req.citizen_id, SmsMessage.purpose == req.purpose_code)).scalars())
            entry = report["purposes"].setdefault(req.purpose_code, {"found": 0, "erased": 0, "deidentified": 0,
                                                                     "pending": 0, "note": ""})
            entry["found"] += len(msgs)
            if dry_run:
                continue
            n = _clear(msgs, now)
            entry["deidentified"] += n
            rights.close_by_system(req, f"согласие отозвано: обработка прекращена, SMS цели обезличены ({n}); "
                                        f"исполнено автоматически {now.date().isoformat()}", actor=actor)
            report["closed_requests"].append(req.id)
        elif req.purpose_code == "call_recording_qa" and req.citizen_id not in qa_withdrawals:
            qa_withdrawals.append(req.citizen_id)
    if not dry_run:
        db.session.commit()

    # 4. recordings for QA: destroyed after a withdrawal; past the period, reported
    p = regs.get("call_recording_qa")
    if p is not None:
        old_calls = sum(hooks.fire("retention.recordings", before=now - timedelta(days=p.retention_days)))
        destroyed, errors = 0, []
        for citizen_id in ([] if dry_run else qa_withdrawals):
            try:
                records = [r for r in hooks.fire("retention.destroy_recordings", citizen_id=citizen_id, actor=actor)
                           if r is not None]
            except Exception as exc:  # one citizen's failure must not stop the run; the next run retries
                db.session.rollback()
                errors.append(f"{citizen_id}: {type(exc).__name__}")
                continue
            for record in records:
                destroyed += json.loads(record.detail or "{}").get("recordings", 0)
                act = rights.act_for_record(record.id)
                if act is not None:
                    report["acts"].append(act.number)
        left = len(qa_withdrawals) if dry_run else len(errors)
        entry = {
            "found": old_calls + len(qa_withdrawals), "erased": destroyed, "deidentified": 0,
            "pending": old_calls + left,
            "note": (f"отзывов согласия на запись: {len(qa_withdrawals)}, уничтожено записей и расшифровок: "
                     f"{destroyed} (хранившихся только для контроля качества; записи-подтверждения согласия "
                     f"сохраняются); записей старше {p.retention_days} дн.: {old_calls} — исполняется вручную "
                     "или полным уничтожением данных заявителя")}
        if errors:
            entry["errors"] = errors
        report["purposes"]["call_recording_qa"] = entry

    report["overdue_requests"] = [r.id for r in rights.listing("overdue")]
    run_row = db.session.get(RetentionRun, run_row.id)
    run_row.report = report
    run_row.erased = sum(e["erased"] for e in report["purposes"].values())
    run_row.deidentified = sum(e["deidentified"] for e in report["purposes"].values())
    run_row.pending = sum(e["pending"] for e in report["purposes"].values())
    run_row.finished_at = utcnow()
    audit.record("retention.run", purpose=consent.DSR_PURPOSE, actor=actor,
                 detail=f"run {run_row.id} dry_run={dry_run} erased={run_row.erased} "
                        f"deidentified={run_row.deidentified} pending={run_row.pending}")
    db.session.commit()
    return run_row


def runs(limit: int = 50) -> list[RetentionRun]:
    return list(db.session.execute(db.select(RetentionRun).order_by(RetentionRun.started_at.desc())
                                   .limit(limit)).scalars())


def get_run(run_id: int) -> RetentionRun | None:
    return db.session.get(RetentionRun, run_id)


def recording_destructions(limit: int = 100) -> list[dict]:
    """The latest destructions of recordings kept for QA (destruction records of ``scope``
    ``recordings``), newest first, for the DPO's retention page: ``{"record", "act" (or None),
    "recordings": n, "kept": n}`` (ids and counts, no personal value)."""
    rows = db.session.execute(db.select(DestructionRecord).where(DestructionRecord.scope == "recordings")
                              .order_by(DestructionRecord.at.desc()).limit(limit)).scalars()
    out = []
    for r in rows:
        detail = json.loads(r.detail or "{}")
        out.append({"record": r, "act": rights.act_for_record(r.id), "recordings": detail.get("recordings", 0),
                    "kept": len(detail.get("kept_as_consent_evidence") or [])})
    return out
