"""Consent events (grant, refuse, withdraw), the register of purposes, and the questions other
packages ask before processing on consent: :func:`may_notify` (SMS, surveys) and
:func:`may_use_for_qa` (QA sampling of calls).

Data subject requests, the access export and erasure are in :mod:`crm.consent.rights`; the
self-service page's links and codes in :mod:`crm.consent.selfservice`; retention in
:mod:`crm.consent.retention`."""
from __future__ import annotations

import hashlib
import re
from datetime import timedelta

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from crm import hooks, text_ru
from crm.citizens import services as citizens
from crm.citizens.services import Citizen
from crm.consent import sms
from crm.consent.models import ConsentEvent, DataSubjectRequest, Purpose, PurposeChangeProposal
from crm.consent.texts import DEFAULT_VERSION, ITEM_LABELS, PURPOSE_DETAILS, PURPOSES, TEXTS, render, text_hash
from crm.db import db, utcnow
from crm.i18n import N_, lazy_gettext as _l
from crm.security import audit
from crm.users import services as users
from crm.security.permissions import require_role
from crm.consent import rights

CHANNELS = ("call", "web", "paper", "api")
CHANNELS_RU = {"call": "звонок", "web": "сайт (самообслуживание)", "paper": "бумажный документ", "api": "интеграция (API)",
               "email": "эл. почта"}
STATUS_RU = {"active": N_("действует"), "withdrawn": N_("отозвано"), "refused": N_("не дано"), "expired": N_("истёк срок")}
#: The purpose code used in the access log for work on data subject requests (as crm.security.audit).
DSR_PURPOSE = audit.REPORT_PURPOSE
EDITABLE = ("name_ru", "legal_basis", "requires_consent", "data_categories", "subjects", "actions", "processing_method",
            "recipients", "retention_days", "retention_basis", "retention_action")


class ConsentError(ValueError):
    def __init__(self, message: str, field: str | None = None, code: str = "invalid"):
        super().__init__(message)
        self.field = field
        self.code = code


#: A withdrawal's or a paper consent's registration number (the letter's or scan's number in the office's
#: register): it is kept in clear on the append-only consent record, so only this shape is accepted.
WITHDRAWAL_REF = re.compile(r"[0-9A-Za-zА-Яа-яЁё№\-/. ]{1,64}")
REGISTRATION_REF = WITHDRAWAL_REF
#: The evidence the self-service page records itself: the grant (session) the citizen signed in with.
GRANT_REF = re.compile(r"selfservice grant [0-9a-f-]{8,36}")


def _check_ref(ref: str | None, citizen_id: str | None, field: str) -> str | None:
    ref = (ref or "").strip()
    if not ref:
        return None
    found = text_ru.personal_values(ref)
    if citizen_id and "ФИО" not in found and citizens.named_in(citizen_id, ref):
        found.append("фамилия заявителя")
    if found:
        raise ConsentError(_l("в рег. номере не должно быть персональных данных (найдено: %(found)s): укажите "
                              "только номер письма или скана", found=", ".join(found)), field, "personal_data")
    if not REGISTRATION_REF.fullmatch(ref):
        raise ConsentError(_l("рег. номер — до 64 знаков: буквы, цифры, «№», «-», «/», «.» и пробелы"), field)
    return ref


def check_withdrawal_ref(ref: str | None, citizen_id: str | None = None) -> str | None:
    """The registration number of a withdrawal received on paper or by e-mail, entered by the DPO
    (``consent_events.withdrawn_ref``), stripped (None when empty). It must look like a registration
    number (:data:`WITHDRAWAL_REF`: up to 64 letters, digits, «№», «-», «/», «.», spaces) and hold no
    personal value (:func:`crm.text_ru.personal_values`, or the citizen's surname), as the DPO's
    notes. Raises :class:`ConsentError` (field ``ref``; code ``personal_data`` or ``invalid``)."""
    return _check_ref(ref, citizen_id, "ref")


def check_evidence_ref(ref: str | None, citizen_id: str | None = None) -> str | None:
    """The evidence reference of a consent (``consent_events.evidence_ref``), stripped (None when
    empty): a paper consent's registration number, under the same rule as a withdrawal's
    (:func:`check_withdrawal_ref`), or the self-service grant the citizen answered in
    (:data:`GRANT_REF`, written by the application). Kept in clear on the append-only record until
    the citizen's erasure clears it (crm/consent/personal_data.py, migration 0034). Raises
    :class:`ConsentError` (field ``evidence_ref``; code ``personal_data`` or ``invalid``)."""
    stripped = (ref or "").strip()
    if GRANT_REF.fullmatch(stripped):
        return stripped
    return _check_ref(ref, citizen_id, "evidence_ref")


CONTROLLER_NOT_CONFIGURED = _l("наименование и адрес оператора персональных данных не заданы в настройках "
                               "(CRM_CONTROLLER_NAME, CRM_CONTROLLER_ADDRESS в instance/config.py): согласие "
                               "не может быть записано, потому что в его тексте должны быть наименование и адрес "
                               "оператора (ст. 9 ч. 4 152-ФЗ). Обратитесь к администратору системы")


def controller() -> tuple[str, str]:
    """``(name, address)`` of the controller (оператор ПДн) from ``CRM_CONTROLLER_NAME`` and
    ``CRM_CONTROLLER_ADDRESS``; placeholders that say what to configure when they are unset (for
    display only: :func:`record` refuses to store a consent while they are unset)."""
    name, address = ((current_app.config["CRM_CONTROLLER_NAME"], current_app.config["CRM_CONTROLLER_ADDRESS"])
                     if has_app_context() else (None, None))
    return (name or "(наименование оператора не задано: CRM_CONTROLLER_NAME)",
            address or "(адрес оператора не задан: CRM_CONTROLLER_ADDRESS)")


def controller_configured(config=None) -> bool:
    """Whether both the controller's name and address are set (``config``: default the app's)."""
    cfg = current_app.config if config is None else config
    return bool(str(cfg["CRM_CONTROLLER_NAME"] or "").strip() and str(cfg["CRM_CONTROLLER_ADDRESS"] or "").strip())


# --- the register of purposes ---------------------------------------------------------------------

def ensure_purposes(commit: bool = True) -> None:
    """Insert the built-in purposes that are missing and fill their empty register columns
    (idempotent; what the DPO edited is kept)."""
    for code, name, basis, needs, cats, days in PURPOSES:
        purpose = db.session.get(Purpose, code)
        if purpose is None:
            purpose = Purpose(code=code, name_ru=name, legal_basis=basis, requires_consent=needs,
                              data_categories=cats, retention_days=days)
            db.session.add(purpose)
        for key, value in PURPOSE_DETAILS.get(code, {}).items():
            if not getattr(purpose, key, None):
                setattr(purpose, key, value)
    if commit:
        db.session.commit()
    else:
        db.session.flush()


def purposes() -> list[Purpose]:
    """The register, in the built-in order, then any others by code (built-ins made on first use)."""
    order = {code: i for i, (code, *_) in enumerate(PURPOSES)}
    rows = db.session.execute(db.select(Purpose)).scalars().all()
    if not set(order) <= {p.code for p in rows}:
        ensure_purposes(commit=False)
        rows = db.session.execute(db.select(Purpose)).scalars().all()
    return sorted(rows, key=lambda p: (order.get(p.code, len(order)), p.code))


def get_purpose(code: str) -> Purpose | None:
    """A register row; a built-in purpose missing from the table is created on first use (no commit)."""
    purpose = db.session.get(Purpose, code)
    if purpose is None and code in {p[0] for p in PURPOSES}:
        ensure_purposes(commit=False)
        purpose = db.session.get(Purpose, code)
    return purpose


#: Register changes one DPO may only propose and a different DPO must approve (two-person rule):
#: ``(column, value)``. Switching ``requires_consent`` off lets processing go on without anybody's
#: consent (152-ФЗ ст. 6, 9), so it is never one person's decision.
TWO_PERSON_CHANGES = (("requires_consent", False),)


def update_purpose(purpose: Purpose, values: dict, *, user) -> list[str]:
    """Change the register row ``purpose`` (DPO). ``values``: any of :data:`EDITABLE`. Logs
    ``purpose.update`` with the changed column names. Returns them. Raises :class:`ConsentError`.

    A change listed in :data:`TWO_PERSON_CHANGES` (switching ``requires_consent`` off) is not made:
    it becomes a pending :class:`~crm.consent.models.PurposeChangeProposal` (one per purpose and
    column; logged ``purpose.propose``) that a different DPO approves (:func:`approve_proposal`);
    the other columns change at once. See :func:`proposed` for what was proposed."""

    require_role(user, "dpo")
    changed = []
    proposals = []
    for key, value in values.items():
        if key not in EDITABLE:
            raise ConsentError(_l("поле «%(key)s» реестра не изменяется", key=key), key)
        if isinstance(value, str):
            value = value.strip()
            if key in ("name_ru", "legal_basis") and not value:
                raise ConsentError(_l("поле не может быть пустым"), key)
        if key == "retention_days" and (not isinstance(value, int) or not 1 <= value <= 36500):
            raise ConsentError(_l("срок хранения — целое число дней от 1 до 36 500"), key)
        if key == "retention_action" and value not in ("erase", "deidentify"):
            raise ConsentError(_l("по истечении срока: уничтожение или обезличивание"), key)
        if getattr(purpose, key) != value:
            if (key, value) in TWO_PERSON_CHANGES:
                proposals.append((key, value))
                continue
            setattr(purpose, key, value)
            changed.append(key)
    if changed:
        purpose.updated_at = utcnow()
        purpose.updated_by = user.id
        audit.record("purpose.update", purpose=purpose.code, detail="changed: " + ",".join(changed),
                     actor=_actor(user))
    for key, value in proposals:
        if proposed(purpose.code, key) is None:
            row = PurposeChangeProposal(purpose_code=purpose.code, field=key, value=value, status="pending",
                                        proposed_by=user.id, proposed_at=utcnow())
            db.session.add(row)
            audit.record("purpose.propose", purpose=purpose.code,
                         detail=f"proposal {row.id}: {key} -> {str(value).lower()}, awaiting a second DPO",
                         actor=_actor(user))
    db.session.commit()
    return changed


def _actor(user) -> audit.Actor:
    """The access log's actor for a register change made by ``user`` (also outside a request)."""
    return audit.Actor(user.id, user.username, user.role)


def proposed(purpose_code: str, field: str | None = None) -> PurposeChangeProposal | None:
    """The pending proposal for ``purpose_code`` (and ``field``), or None."""
    q = db.select(PurposeChangeProposal).where(PurposeChangeProposal.purpose_code == purpose_code,
                                               PurposeChangeProposal.status == "pending")
    if field is not None:
        q = q.where(PurposeChangeProposal.field == field)
    return db.session.execute(q.order_by(PurposeChangeProposal.proposed_at)).scalars().first()


def pending_proposals() -> list[PurposeChangeProposal]:
    """Register changes awaiting a second DPO, oldest first (the DPO's register page lists them)."""
    return list(db.session.execute(db.select(PurposeChangeProposal).where(PurposeChangeProposal.status == "pending")
                                   .order_by(PurposeChangeProposal.proposed_at)).scalars())


def _pending_proposal(proposal_id: str) -> PurposeChangeProposal:
    row = db.session.get(PurposeChangeProposal, proposal_id) if proposal_id else None
    if row is None:
        raise ConsentError(_l("предложение изменения реестра не найдено"), None, "not_found")
    if row.status != "pending":
        raise ConsentError(_l("предложение уже рассмотрено"), None, "bad_state")
    return row


def approve_proposal(proposal_id: str, *, user) -> Purpose:
    """A second DPO approves a pending register change (:func:`update_purpose`): the column takes
    the proposed value; logged ``purpose.approve`` and ``purpose.update``. Returns the purpose.
    Raises ``PermissionDenied`` unless ``user`` is a DPO, :class:`ConsentError` ``same_person`` when
    ``user`` proposed it (two-person rule), ``not_found`` or ``bad_state`` (already decided)."""
    require_role(user, "dpo")
    row = _pending_proposal(proposal_id)
    if row.proposed_by == user.id:
        raise ConsentError(_l("изменение должен подтвердить другой ответственный за обработку ПДн, "
                              "не тот, кто его предложил"), None, "same_person")
    purpose = get_purpose(row.purpose_code)
    now = utcnow()
    row.status, row.decided_by, row.decided_at = "approved", user.id, now
    setattr(purpose, row.field, row.value)
    purpose.updated_at, purpose.updated_by = now, user.id
    audit.record("purpose.approve", purpose=purpose.code,
                 detail=f"proposal {row.id}: {row.field} -> {str(row.value).lower()}, proposed by user {row.proposed_by}",
                 actor=_actor(user))
    audit.record("purpose.update", purpose=purpose.code, detail=f"changed: {row.field} (proposal {row.id})",
                 actor=_actor(user))
    db.session.commit()
    return purpose


def reject_proposal(proposal_id: str, *, user) -> PurposeChangeProposal:
    """A DPO (any, the proposer too: a withdrawal) rejects a pending register change; nothing
    changes in the register; logged ``purpose.reject``. Raises like :func:`approve_proposal`."""
    require_role(user, "dpo")
    row = _pending_proposal(proposal_id)
    row.status, row.decided_by, row.decided_at = "rejected", user.id, utcnow()
    audit.record("purpose.reject", purpose=row.purpose_code, detail=f"proposal {row.id}: {row.field} kept",
                 actor=_actor(user))
    db.session.commit()
    return row


# --- consent events -------------------------------------------------------------------------------

def record(citizen: Citizen, purpose: str, *, text_version: str | None = None, channel: str = "call",
           given: bool = True, operator_id: int | None = None, evidence_call_id: str | None = None,
           evidence_offset_s: float | None = None, appeal_id: str | None = None, evidence_ref: str | None = None,
           actor: audit.Actor | None = None, commit: bool = True) -> ConsentEvent:
    """Record a consent (or a refusal when ``given`` is False) with the text version shown, the
    controller's name and address as rendered into it, the channel and the evidence.

    Evidence: ``evidence_call_id`` and ``evidence_offset_s`` (seconds into the recording); on a
    call with only ``appeal_id``, the appeal's latest call; ``evidence_ref`` (a paper scan's
    registry number, a self-service grant id; checked by :func:`check_evidence_ref`: no personal value,
    a registration number's shape). The term (``expires_at``) comes from the text.
    Idempotent for a consent: when one for the same citizen, purpose and text version is already in
    force (:func:`active_consent`), that event is returned with ``repeated = True`` and no new event
    is made (the attempt is logged as ``consent.grant``, outcome ``repeat``); a new event has
    ``repeated = False``. Refusals are always recorded.
    A refusal after a consent withdraws the consents in force for the purpose (the latest answer
    wins; :func:`withdraw`'s effects, the refusal's evidence as the withdrawal's). ``consent.changed``
    is fired after the commit (with ``commit=False``: when the caller's transaction commits).
    Raises :class:`ConsentError` for an unknown purpose, text version or channel, a negative
    offset, an evidence reference holding personal data or not shaped as a registration number
    (field ``evidence_ref``), an erased citizen (code ``erased``), an evidence call that does not exist (``not_found``)
    or is another citizen's (``foreign_call``: it would keep that citizen's recording as evidence), or while the controller's name or address is not
    configured (code ``controller_not_configured``: a written consent must name them, 152-ФЗ
    ст. 9 ч. 4, so no placeholder is ever stored)."""
    if not controller_configured():
        raise ConsentError(CONTROLLER_NOT_CONFIGURED, None, "controller_not_configured")
    if db.session.get(Purpose, purpose) is None and purpose in {p[0] for p in PURPOSES}:
        ensure_purposes(commit=False)  # a fresh install: the built-in register is created on first use
    if db.session.get(Purpose, purpose) is None:
        raise ConsentError(_l("неизвестная цель обработки «%(purpose)s»", purpose=purpose), "purpose")
    version = text_version or DEFAULT_VERSION.get(purpose)
    text = TEXTS.get((purpose, version))
    if text is None:
        raise ConsentError(_l("неизвестная версия текста согласия «%(version)s»", version=version), "text_version")
    if channel not in CHANNELS:
        raise ConsentError(_l("неизвестный канал «%(channel)s»", channel=channel), "channel")
    if evidence_offset_s is not None and evidence_offset_s < 0:
        raise ConsentError(_l("момент в записи не может быть отрицательным"), "evidence_offset_s")
    if citizen.erased_at is not None:
        raise ConsentError(_l("данные заявителя уничтожены: согласие не может быть получено"), "citizen_id", "erased")
    evidence_ref = check_evidence_ref(evidence_ref, citizen.id)
    if evidence_call_id is not None:  # a call given as evidence must be this citizen's (re-audit 6C)
        call = hooks.ask("call.lookup", call_id=evidence_call_id)
        if call is None:
            raise ConsentError(_l("звонок-доказательство не найден"), "evidence_call_id", "not_found")
        if call.citizen_id != citizen.id and not (call.citizen_id is None and appeal_id and call.appeal_id == appeal_id):
            raise ConsentError(_l("звонок-доказательство — разговор с другим заявителем"), "evidence_call_id",
                               "foreign_call")
    if given:  # idempotent: a consent already in force for this text is returned, no second event
        existing = active_consent(citizen.id, purpose, version)
        if existing is not None:
            existing.repeated = True
            audit.record("consent.grant", citizen_id=citizen.id, purpose=purpose, appeal_id=appeal_id,
                         outcome="repeat", detail=f"already active: {existing.id}", actor=actor)
            if commit:
                db.session.commit()
            return existing
    if channel == "call" and evidence_call_id is None and appeal_id:
        # the appeal's latest call, from the package that keeps calls (crm.calls.hooks)
        evidence_call_id = next((c for c in hooks.fire("appeal.latest_call", appeal_id=appeal_id) if c), None)
    kind = ("call" if evidence_call_id else "scan" if channel == "paper" and evidence_ref
            else channel if channel in ("web", "api") else None)
    name, address = controller()
    now = utcnow()
    event = ConsentEvent(citizen_id=citizen.id, purpose_code=purpose, text_version=version,
                         text_hash=text_hash(purpose, version, name, address), channel=channel, given=given,
                         operator_id=operator_id, evidence_call_id=evidence_call_id,
                         evidence_offset_s=evidence_offset_s, appeal_id=appeal_id, evidence_kind=kind,
                         evidence_ref=evidence_ref, controller_name=name[:300],
                         controller_address=address[:300], at=now,
                         expires_at=now + timedelta(days=text.term_days) if given and text.term_days else None)
    event.repeated = False
    db.session.add(event)
    audit.record("consent.grant" if given else "consent.refuse", citizen_id=citizen.id, purpose=purpose,
                 call_id=evidence_call_id, appeal_id=appeal_id, actor=actor)
    withdrew = False
    if not given:  # the latest answer wins: a refusal withdraws the consents still in force for the purpose
        in_force = [e for e in for_citizen(citizen.id) if e.purpose_code == purpose and e.id != event.id
                    and e.given and e.withdrawn_at is None]
        if in_force:
            withdrew = True
            _withdraw_events(in_force, channel=channel, user_id=operator_id, evidence_call_id=evidence_call_id,
                             evidence_offset_s=evidence_offset_s, ref=f"refusal {event.id}", actor=actor, at=now)
    status = "active" if given else "withdrawn" if withdrew else "refused"
    if commit:
        db.session.commit()
        _changed(citizen.id, purpose, status)
    else:  # the caller's transaction decides: fired when it commits, dropped when it rolls back
        db.session().info.setdefault(_CHANGES, []).append((citizen.id, purpose, status))
    return event


_CHANGES = "crm_consent_changes"


def _changed(citizen_id: str, purpose: str, status: str) -> None:
    """Fire ``consent.changed`` after the commit (its subscribers enqueue jobs, which must see the change)."""
    hooks.fire("consent.changed", citizen_id=citizen_id, purpose=purpose, status=status)


@event.listens_for(Session, "after_commit")
def _changes_after_commit(session: Session) -> None:
    """``consent.changed`` for the events :func:`record` added with ``commit=False``, once the
    caller's transaction committed (a subscriber enqueues jobs; it sends no SQL here)."""
    for citizen_id, purpose, status in session.info.pop(_CHANGES, []):
        _changed(citizen_id, purpose, status)


@event.listens_for(Session, "after_transaction_end")
def _changes_dropped(session: Session, transaction) -> None:
    if transaction.parent is None:  # rolled back (after a commit the list is already empty)
        session.info.pop(_CHANGES, None)


def active_consent(citizen_id: str, purpose: str, text_version: str | None = None) -> ConsentEvent | None:
    """The consent in force for ``citizen_id`` and ``purpose`` (the latest event, as :func:`has_consent`:
    given, not withdrawn, not expired), if it is for ``text_version`` (any when None); else None."""
    latest = _latest(citizen_id, purpose)
    if latest is None or latest.status != "active":
        return None
    return latest if text_version is None or latest.text_version == text_version else None


def withdraw(event: ConsentEvent, *, channel: str = "api", user_id: int | None = None,
             evidence_call_id: str | None = None, evidence_offset_s: float | None = None, ref: str | None = None,
             actor: audit.Actor | None = None) -> ConsentEvent:
    """Withdraw a consent. Always accepted, even for an erased citizen; withdrawing twice keeps the
    first time. The effect is immediate: :func:`has_consent`, :func:`may_notify` and
    :func:`may_use_for_qa` answer False from this commit on, and the first withdrawal of a given
    consent opens a ``withdrawal`` request whose clock (destroy or de-identify the purpose's data
    within 30 days, 152-ФЗ ст. 21 ч. 5) the retention job and the DPO work against. The appeal and
    everything processed on another legal basis stay. A refusal recorded after a consent
    (:func:`record` with ``given=False``) withdraws it the same way. Fires ``consent.changed``
    (status ``withdrawn``) after the commit."""

    first = event.withdrawn_at is None
    if first:
        # every consent still in force for this purpose goes with it: the citizen withdraws a purpose
        others = [e for e in for_citizen(event.citizen_id) if e.purpose_code == event.purpose_code
                  and e.id != event.id and e.given and e.withdrawn_at is None]
        _withdraw_events([event, *others], channel=channel, user_id=user_id, evidence_call_id=evidence_call_id,
                         evidence_offset_s=evidence_offset_s, ref=ref, actor=actor, request=event.given)
    audit.record("consent.withdraw", citizen_id=event.citizen_id, purpose=event.purpose_code,
                 call_id=evidence_call_id, outcome="ok" if first else "repeat", actor=actor)
    db.session.commit()
    if first:
        _changed(event.citizen_id, event.purpose_code, "withdrawn")
    return event


def _withdraw_events(events: list[ConsentEvent], *, channel: str, user_id: int | None, evidence_call_id: str | None,
                     evidence_offset_s: float | None, ref: str | None, actor: audit.Actor | None,
                     at=None, request: bool = True) -> None:
    """Set the withdrawal columns of ``events`` (one purpose of one citizen; written once, the table
    is append-only) and, when ``request``, open the ``withdrawal`` request with its 30-day clock for
    the first of them. No commit."""
    now = at or utcnow()
    for e in events:
        e.withdrawn_at = now
        e.withdrawn_channel = channel
        e.withdrawn_by = user_id
        e.withdrawn_call_id = evidence_call_id
        e.withdrawn_offset_s = evidence_offset_s
        e.withdrawn_ref = (ref or "")[:200] or None
    if request and events:
        rights.register(events[0].citizen_id, "withdrawal", channel=channel, purpose=events[0].purpose_code,
                        consent_id=events[0].id, received_at=now, user_id=user_id, actor=actor, commit=False)


#: The order of a citizen's answers for one purpose, newest first. Two answers recorded at the same
#: instant cannot be told apart by time: the refusal counts as the later one (consent must be
#: demonstrable, 152-ФЗ ст. 9 ч. 3, so a doubt is read as no consent), then the event id decides.
LATEST_FIRST = (ConsentEvent.at.desc(), ConsentEvent.given.asc(), ConsentEvent.id.desc())


def evidence_call_ids(call_ids: list[str]) -> set[str]:
    """Which of ``call_ids`` are the evidence of a consent, refusal or withdrawal of anyone
    (``evidence_call_id``, ``withdrawn_call_id``): those recordings are kept to demonstrate the
    consent (152-ФЗ ст. 9 ч. 3 — the burden of proof lies on the controller), not for QA."""
    if not call_ids:
        return set()
    rows = db.session.execute(db.select(ConsentEvent.evidence_call_id, ConsentEvent.withdrawn_call_id).where(
        ConsentEvent.evidence_call_id.in_(call_ids) | ConsentEvent.withdrawn_call_id.in_(call_ids))).all()
    return {c for row in rows for c in row if c in set(call_ids)}


def open_withdrawals(citizen_id: str, purpose: str) -> list[DataSubjectRequest]:
    """The citizen's withdrawal requests for ``purpose`` still open (their 30-day clock running)."""
    return list(db.session.execute(db.select(DataSubjectRequest).where(
        DataSubjectRequest.citizen_id == citizen_id, DataSubjectRequest.type == "withdrawal",
        DataSubjectRequest.purpose_code == purpose, DataSubjectRequest.status == "open")
        .order_by(DataSubjectRequest.received_at)).scalars())


def complete_withdrawal(citizen_id: str, purpose: str, record=None, *, note: str, actor: audit.Actor,
                        legal_basis: str = "152-ФЗ ст. 21 ч. 5 (отзыв согласия)"):
    """The data a withdrawal of ``purpose`` asked to destroy are destroyed: close the citizen's open
    withdrawal requests for it (answered by the system with ``note``, no personal values), linking
    the destruction record ``record`` when there is one, and write its destruction act. Commits.
    Returns the act, or None without a record."""
    reqs = open_withdrawals(citizen_id, purpose)
    for req in reqs:
        if record is not None:
            req.destruction_record_id = record.id
        rights.close_by_system(req, note, actor=actor)
    db.session.commit()
    if record is None:
        return None
    return rights.make_act(record, request=reqs[0] if reqs else None, requested_by=actor, approved_by=None,
                           legal_basis=legal_basis)


def _latest(citizen_id: str, purpose: str) -> ConsentEvent | None:
    """The newest event (given or refused) of ``citizen_id`` for ``purpose`` (:data:`LATEST_FIRST`)."""
    return db.session.execute(db.select(ConsentEvent).where(
        ConsentEvent.citizen_id == citizen_id, ConsentEvent.purpose_code == purpose)
        .order_by(*LATEST_FIRST).limit(1)).scalar_one_or_none()


def has_consent(citizen_id: str, purpose: str) -> bool:
    """True when the latest event for (citizen, purpose) is a given consent, not withdrawn, not
    expired: the latest answer wins (a refusal after a consent withdraws it; ties as :data:`LATEST_FIRST`)."""
    latest = _latest(citizen_id, purpose)
    return bool(latest and latest.status == "active")


def _processing_stopped(citizen_id: str, purpose: str) -> bool:
    """A demand to stop processing (ст. 21 ч. 5.1) for this purpose or for all purposes, not refused."""
    return db.session.execute(db.select(DataSubjectRequest.id).where(
        DataSubjectRequest.citizen_id == citizen_id, DataSubjectRequest.type == "stop_processing",
        DataSubjectRequest.status != "rejected",
        (DataSubjectRequest.purpose_code == purpose) | DataSubjectRequest.purpose_code.is_(None)).limit(1)).first() is not None


def may_process(citizen_id: str | None, purpose: str) -> bool:
    """May the citizen's data be processed for ``purpose`` right now? False for no or an erased
    citizen, an unknown purpose, a consent-based purpose without an active consent, or after a demand
    to stop processing for it."""
    if not citizen_id:
        return False
    citizen = citizens.get(citizen_id)
    row = get_purpose(purpose)
    if citizen is None or citizen.erased_at is not None or row is None:
        return False
    if row.requires_consent and not has_consent(citizen_id, purpose):
        return False
    return not _processing_stopped(citizen_id, purpose)


def may_notify(citizen_id: str | None, purpose: str) -> bool:
    """May we send this citizen a message for ``purpose`` (``sms_notifications``, ``csat_survey``)?
    Ask it right before sending: a withdrawal stops messages from its commit on. See :func:`may_process`."""
    return may_process(citizen_id, purpose)


def qa_allowed(citizen_id: str | None) -> bool:
    """May this citizen's calls be used for quality control (the QA sample, scoring, calibration,
    transcript search)? True only with an active ``call_recording_qa`` consent and no demand to stop
    it (152-ФЗ ст. 9; a withdrawal stops it from its commit on); False for a call with no citizen,
    an erased or unknown one. The one place this rule lives: QA and the call search ask it."""
    return may_process(citizen_id, "call_recording_qa")


#: The same question under its older name (:func:`qa_allowed`).
may_use_for_qa = qa_allowed


def send_sms(citizen, *, purpose: str, kind: str, body: str, appeal_id: str | None = None,
             appeal_event_id: str | None = None, actor: audit.Actor | None = None, secret: str | None = None):
    """Send ``body`` to the citizen's phone through the outbox and the gateway: see
    :func:`crm.consent.sms.send` (returns the outbox row, or None without a readable phone). The
    caller asks :func:`may_notify` first when the message rests on consent. ``secret`` (a link
    token in ``body``) reaches the gateway only; the outbox keeps it masked."""
    return sms.send(citizen, purpose=purpose, kind=kind, body=body, appeal_id=appeal_id,
                    appeal_event_id=appeal_event_id, actor=actor, secret=secret)


def sms_sent_for_event(appeal_event_id: str) -> bool:
    """Has an SMS already been written to the outbox for this appeal event (one message per transition)?"""
    return db.session.execute(db.select(sms.SmsMessage.id).where(
        sms.SmsMessage.appeal_event_id == appeal_event_id)).first() is not None


def for_citizen(citizen_id: str) -> list[ConsentEvent]:
    return list(db.session.execute(db.select(ConsentEvent).where(ConsentEvent.citizen_id == citizen_id)
                                   .order_by(ConsentEvent.at)).scalars())


def get(consent_id: str) -> ConsentEvent | None:
    return db.session.get(ConsentEvent, consent_id)


def consent_text(event: ConsentEvent) -> tuple[str | None, bool]:
    """``(text, verified)``: the exact words of ``event`` re-rendered from its version and controller,
    and whether their SHA-256 equals the stored ``text_hash``. ``(None, False)`` for an unknown version."""
    text = TEXTS.get((event.purpose_code, event.text_version))
    if text is None:
        return None, False
    words = render(text, event.controller_name, event.controller_address)
    verified = hashlib.sha256(words.encode("utf-8")).hexdigest() == event.text_hash
    if not verified and not text.items:  # events recorded before the controller was stored
        verified = text_hash(event.purpose_code, event.text_version) == event.text_hash
    return words, verified


def text_items(event: ConsentEvent) -> list[tuple[str, str]]:
    """The ст. 9 ч. 4 items of the event's text as ``[(label, value)]`` (empty for a legacy version)."""
    text = TEXTS.get((event.purpose_code, event.text_version))
    if text is None or not text.items:
        return []
    rows = [(ITEM_LABELS["controller"], f"{event.controller_name}, {event.controller_address}")]
    return rows + [(ITEM_LABELS[k], text.items[k]) for k in ITEM_LABELS if k in text.items]


def as_dict(e: ConsentEvent) -> dict:
    return {"id": e.id, "citizen_id": e.citizen_id, "purpose": e.purpose_code, "text_version": e.text_version,
            "text_hash": e.text_hash, "channel": e.channel, "status": e.status, "at": e.at.isoformat(),
            "withdrawn_at": e.withdrawn_at.isoformat() if e.withdrawn_at else None,
            "evidence_call_id": e.evidence_call_id, "evidence_offset_s": e.evidence_offset_s,
            "expires_at": e.expires_at.isoformat() if e.expires_at else None, "appeal_id": e.appeal_id,
            "withdrawn_channel": e.withdrawn_channel}


def purpose_label(code: str | None) -> str:
    """The purpose's name in the register (as the DPO named it), else the built-in name, else the code."""
    if not code:
        return ""
    purpose = db.session.get(Purpose, code)
    if purpose is not None and purpose.name_ru:
        return purpose.name_ru
    return purpose_names().get(code, code)


def purpose_names() -> dict[str, str]:
    """``{purpose code: Russian name}`` of the register's built-in purposes and the DPO's own
    (``data_subject_request``)."""
    names = {code: name for code, name, *_ in PURPOSES}
    names[DSR_PURPOSE] = "запрос субъекта ПДн / проверка"
    return names


def labels(e: ConsentEvent) -> dict:
    """Russian labels of an event's codes, for documents (the codes stay in :func:`as_dict`)."""
    return {"purpose_label": purpose_label(e.purpose_code), "status_label": STATUS_RU.get(e.status, e.status),
            "channel_label": CHANNELS_RU.get(e.channel, e.channel),
            "withdrawn_channel_label": CHANNELS_RU.get(e.withdrawn_channel, e.withdrawn_channel or "")}


def history(citizen_id: str, *, user) -> dict:
    """Everything needed to demonstrate consent for one citizen (the DPO's one-page history):
    ``{"citizen": masked card, "events": [{event, purpose, text, verified, items, operator,
    withdrawn_by, status_ru}], "requests": [DataSubjectRequest], "purposes": {code: Purpose}}``.
    Shows the citizen's name (masked card, logged by :func:`crm.citizens.services.view`) and logs
    ``consent.history``; commits."""
    require_role(user, "dpo")
    citizen = citizens.get(citizen_id)
    card = citizens.view(citizen, purpose=DSR_PURPOSE, commit=False) if citizen is not None else None
    staff = {u.id: u for u in users.list_users()}
    regs = {p.code: p for p in purposes()}
    events = []
    for e in for_citizen(citizen_id):
        words, verified = consent_text(e)
        events.append({"event": e, "purpose": regs.get(e.purpose_code), "text": words, "verified": verified,
                       "items": text_items(e), "status_ru": STATUS_RU[e.status],
                       "complete": bool(TEXTS.get((e.purpose_code, e.text_version)) and
                                        TEXTS[(e.purpose_code, e.text_version)].complete),
                       "operator": staff.get(e.operator_id), "withdrawn_by": staff.get(e.withdrawn_by)})
    audit.record("consent.history", citizen_id=citizen_id, fields=["consents"], purpose=DSR_PURPOSE,
                 detail=f"events={len(events)}")
    db.session.commit()
    return {"citizen": card, "citizen_id": citizen_id, "events": events, "purposes": regs,
            "requests": rights.for_citizen(citizen_id)}
