"""Data subject requests (152-ФЗ ст. 14, 20, 21) and their legal clocks; the access export; erasure
with four-eyes approval and the destruction act.

Clocks (:func:`due_for`), counted from the day the request was received, Moscow time:

- ``withdrawal`` — consent withdrawn: stop at once, destroy or de-identify the purpose's data within
  30 days (ст. 21 ч. 5), calendar days; the deadline is the end of the 30th day.
- ``stop_processing`` — a demand to stop processing: within 10 working days (ст. 21 ч. 5.1), +5
  working days with a reasoned notice to the subject.
- ``access`` — a request for the information of ст. 14 ч. 7 and the data: within 10 working days
  (ст. 14 ч. 3, ст. 20 ч. 1), +5 working days with a reasoned notice.
- ``erasure`` — destruction at the subject's request or by the operator's decision: 30 days
  (ст. 21 ч. 5 by analogy; ч. 3–4 give 10 and 30 days for unlawful processing and an achieved
  purpose), executed only when a second person approves.

Working days come from :mod:`crm.timeutil` (holidays and transferred days).
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from crm import hooks, text_ru
from crm.consent.models import DataSubjectRequest, DestructionAct, SmsMessage
from crm.db import db, utcnow
from crm.i18n import N_, lazy_gettext as _l
from crm.security import audit
from crm.timeutil import add_working_days, day_end, local_date
from crm.users import services as users
from crm.citizens import services as citizens
from crm.consent import services as consent
from crm.security.permissions import require_role
from crm.security.shredding import ErasureError, erase_citizen
from crm.security.permissions import ROLE_NAMES_RU
from crm.security.models import DestructionRecord

TYPES = {"withdrawal": "Отзыв согласия", "stop_processing": "Требование прекратить обработку",
         "access": "Запрос сведений и данных", "erasure": "Уничтожение данных"}
TYPE_BASIS = {"withdrawal": "152-ФЗ ст. 21 ч. 5 (30 дней)", "stop_processing": "152-ФЗ ст. 21 ч. 5.1 (10 рабочих дней)",
              "access": "152-ФЗ ст. 14 ч. 3, ст. 20 ч. 1 (10 рабочих дней)", "erasure": "152-ФЗ ст. 21 ч. 5 (30 дней)"}
STATUSES = {"open": "в работе", "awaiting_approval": "ждёт утверждения", "answered": "исполнен", "rejected": "отказ"}
CHANNELS = ("call", "web", "paper", "api", "email")
EXTENDABLE = ("access", "stop_processing")
WORKING_DAYS = {"access": 10, "stop_processing": 10}
CALENDAR_DAYS = {"withdrawal": 30, "erasure": 30}
EXTENSION_WORKING_DAYS = 5
INFORMATION_SYSTEM = "ИСПДн «CRM горячей линии ЖКХ» (обращения, звонки и их записи, согласия)"
CATEGORY_RU = {"full_name": "ФИО", "phone": "номер телефона", "email": "адрес эл. почты", "address": "адрес",
               "apartment": "номер квартиры", "appeal_text": "тексты обращений", "appeal_comments": "комментарии к обращениям",
               "call_file_names": "имена файлов записей", "transcripts": "расшифровки разговоров",
               "qa_comments": "комментарии к оценкам звонков", "recordings": "записи разговоров (голос)",
               "sms": "тексты и номера SMS-сообщений", "qa_check_details": "пояснения автоматических проверок звонков",
               "consent_withdrawal_refs": "рег. номера писем об отзыве согласия",
               "csat_comments": "комментарии в опросах удовлетворённости",
               "notification_texts": "тексты неотправленных уведомлений",
               "consent_refs": "рег. номера документов о согласии и его отзыве"}


class RequestError(ValueError):
    """A request refused (bad input, wrong state, same person approving); Russian message."""

    def __init__(self, message: str, field: str | None = None, code: str = "invalid"):
        super().__init__(message)
        self.field = field
        self.code = code


def _no_personal_values(text: str | None, field: str, citizen_id: str | None) -> None:
    """The DPO's free-text notes (what was asked, an extension's reasons, the answer, an erasure's
    reason) are kept in clear and outlive the citizen's data (the reason goes into the destruction
    act): they must hold no personal value. Raises :class:`RequestError` (code ``personal_data``)
    naming what :func:`crm.text_ru.personal_values` found, or the citizen's surname
    (:func:`crm.citizens.services.named_in`)."""
    found = text_ru.personal_values(text)
    if citizen_id and "ФИО" not in found and citizens.named_in(citizen_id, text):
        found.append("фамилия заявителя")
    if found:
        raise RequestError(_l("в тексте не должно быть персональных данных (найдено: %(found)s); заявитель уже "
                              "указан в запросе — опишите суть без его данных", found=', '.join(found)),
                           field, "personal_data")


def _actor_of(user) -> audit.Actor | None:
    return audit.Actor(user.id, user.username, user.role) if user is not None else None


def _end_of_day(day) -> datetime:
    return day_end(day)


def due_for(type_: str, received_at: datetime) -> datetime:
    """The legal deadline (UTC) of a request of ``type_`` received at ``received_at`` (aware).

    Working-day clocks end at 23:59:59 Moscow time of the N-th working day after the day of receipt
    (:func:`crm.timeutil.add_working_days`); calendar clocks at the end of the N-th day.
    A calendar deadline that falls on a holiday is not moved (ГК РФ ст. 193 would allow the next
    working day; we answer earlier, never later). Raises :class:`RequestError` for an unknown type."""
    if type_ in WORKING_DAYS:
        return add_working_days(received_at, WORKING_DAYS[type_]).astimezone(received_at.tzinfo)
    if type_ in CALENDAR_DAYS:
        day = local_date(received_at) + timedelta(days=CALENDAR_DAYS[type_])
        return _end_of_day(day).astimezone(received_at.tzinfo)
    raise RequestError(_l("неизвестный вид запроса «%(type)s»", type=type_), "type")


def register(citizen_id: str, type_: str, *, channel: str, purpose: str | None = None, consent_id: str | None = None,
             note: str | None = None, received_at: datetime | None = None, user_id: int | None = None,
             actor: audit.Actor | None = None, commit: bool = True) -> DataSubjectRequest:
    """Register a request and start its clock. ``received_at`` (aware, default now) may be earlier
    (a letter received yesterday), never in the future. Erasure goes through :func:`request_erasure`.
    Logs ``dsr.register``. Raises :class:`RequestError`."""

    if type_ not in TYPES:
        raise RequestError(_l("неизвестный вид запроса «%(type)s»", type=type_), "type")
    if channel not in CHANNELS:
        raise RequestError(_l("неизвестный канал «%(channel)s»", channel=channel), "channel")
    if purpose is not None and consent.get_purpose(purpose) is None:
        raise RequestError(_l("неизвестная цель обработки «%(purpose)s»", purpose=purpose), "purpose")
    if citizens.get(citizen_id) is None:
        raise RequestError(_l("заявитель не найден"), "citizen_id", "not_found")
    _no_personal_values(note, "note", citizen_id)
    now = utcnow()
    received_at = received_at or now
    if received_at.tzinfo is None:
        raise RequestError(_l("время получения без часового пояса"), "received_at")
    if received_at > now + timedelta(minutes=5):
        raise RequestError(_l("дата получения запроса не может быть в будущем"), "received_at")
    if received_at < now - timedelta(days=366):
        raise RequestError(_l("дата получения запроса старше года: проверьте дату"), "received_at")
    req = DataSubjectRequest(citizen_id=citizen_id, type=type_, purpose_code=purpose, consent_id=consent_id,
                             channel=channel, note=(note or "").strip()[:5000] or None, received_at=received_at,
                             due_at=due_for(type_, received_at), status="open", created_at=now, created_by=user_id)
    db.session.add(req)
    audit.record("dsr.register", citizen_id=citizen_id, purpose=purpose or consent.DSR_PURPOSE,
                 detail=f"request {req.id} type={type_}", actor=actor)
    if commit:
        db.session.commit()
    return req


def get(request_id: str) -> DataSubjectRequest | None:
    return db.session.get(DataSubjectRequest, request_id)


def for_citizen(citizen_id: str) -> list[DataSubjectRequest]:
    return list(db.session.execute(db.select(DataSubjectRequest).where(DataSubjectRequest.citizen_id == citizen_id)
                                   .order_by(DataSubjectRequest.received_at)).scalars())


def listing(status: str = "open", type_: str | None = None, limit: int = 500) -> list[DataSubjectRequest]:
    """Requests by state: ``open`` (open or awaiting approval, nearest deadline first), ``overdue``,
    ``closed`` (answered or rejected, newest first) or ``all``."""
    q = db.select(DataSubjectRequest)
    if type_:
        q = q.where(DataSubjectRequest.type == type_)
    deadline = db.func.coalesce(DataSubjectRequest.extended_due_at, DataSubjectRequest.due_at)
    if status in ("open", "overdue"):
        q = q.where(DataSubjectRequest.status.in_(("open", "awaiting_approval"))).order_by(deadline)
        if status == "overdue":
            q = q.where(deadline < utcnow())
    elif status == "closed":
        q = q.where(DataSubjectRequest.status.in_(("answered", "rejected"))).order_by(DataSubjectRequest.answered_at.desc())
    else:
        q = q.order_by(DataSubjectRequest.received_at.desc())
    return list(db.session.execute(q.limit(limit)).scalars())


def extend(req: DataSubjectRequest, reason: str, *, user) -> DataSubjectRequest:
    """Extend the term by 5 working days after a reasoned notice to the subject (ст. 14 ч. 3,
    ст. 20 ч. 1, ст. 21 ч. 5.1). Once per request, only for access and stop-processing requests,
    before the deadline. ``reason``: the notice's reasons (kept). Logs ``dsr.extend``."""

    require_role(user, "dpo")
    reason = (reason or "").strip()
    if req.type not in EXTENDABLE:
        raise RequestError(_l("срок этого запроса не продлевается"), "type", "not_extendable")
    if req.closed:
        raise RequestError(_l("запрос уже закрыт"), "status", "closed")
    if req.extended_due_at is not None:
        raise RequestError(_l("срок уже продлён: продлить можно один раз"), "status", "already_extended")
    if req.overdue():
        raise RequestError(_l("срок уже истёк: продление возможно только до его окончания"), "status", "overdue")
    if len(reason) < 10:
        raise RequestError(_l("укажите причины продления, которые сообщены заявителю (мотивированное уведомление)"),
                           "reason")
    _no_personal_values(reason, "reason", req.citizen_id)
    req.extended_due_at = add_working_days(req.due_at, EXTENSION_WORKING_DAYS).astimezone(req.due_at.tzinfo)
    req.extension_reason = reason[:5000]
    req.extended_at = utcnow()
    req.extended_by = user.id
    audit.record("dsr.extend", citizen_id=req.citizen_id, purpose=req.purpose_code or audit.REPORT_PURPOSE,
                 detail=f"request {req.id} until {req.extended_due_at.isoformat()}")
    db.session.commit()
    return req


# --- an access request: identity, a second DPO's approval, delivery ----------------------------------

#: How the subject's identity was established before their data are exported (152-ФЗ ст. 14 ч. 3: the
#: request must let the operator identify the subject).
VERIFICATION_METHODS = {"self_service_code": "код из SMS на странице самообслуживания (номер телефона заявителя)",
                        "document": "документ, удостоверяющий личность, предъявлен лично"}
#: The kinds of document the DPO may record as seen (the number is never recorded).
DOCUMENT_TYPES = {"passport_rf": "паспорт гражданина РФ", "passport_foreign": "заграничный паспорт",
                  "id_other": "иной документ, удостоверяющий личность",
                  "notarized_request": "нотариально заверенный запрос",
                  "representative": "доверенность представителя и его паспорт"}
#: How the answer reaches the citizen: a self-service download after the SMS code, or handed over printed.
DELIVERY_METHODS = {"self_service": N_("скачивание на странице самообслуживания после кода из SMS"),
                    "print": N_("печатный документ (или файл), выданный лично")}
#: Four digits in a row (spaces and dashes allowed between them): a document number, refused in notes.
_DOCUMENT_NUMBER = re.compile(r"(?:\d[\s\-№]*){4,}")


def verify_identity(req: DataSubjectRequest, method: str, *, user, document_type: str | None = None,
                    note: str | None = None) -> DataSubjectRequest:
    """Record how the subject of access request ``req`` proves their identity, before anything is
    exported. ``method``: ``document`` (the DPO saw ``document_type``, one of :data:`DOCUMENT_TYPES`;
    ``note`` may say more, but a run of four or more digits — a document number — is refused: the
    number is never kept) or ``self_service_code`` (the citizen will sign in to the self-service page
    with an SMS code sent to their registered phone; the identity counts as established at that
    moment, :func:`mark_delivered`). The answer then goes out as printed (``document``) or as a
    self-service download (``self_service_code``). Allowed until a second DPO approved the answer.
    Logs ``dsr.verify`` (method and kind of document, not the note). Raises :class:`RequestError`."""
    require_role(user, "dpo")
    if req.type != "access":
        raise RequestError(_l("личность устанавливается для запроса сведений и данных"), "type", "not_access")
    if req.closed:
        raise RequestError(_l("запрос уже закрыт"), "status", "closed")
    if req.export_approved_by is not None:
        raise RequestError(_l("ответ уже утверждён: способ установления личности не меняется"), "verification_method",
                           "already_approved")
    if method not in VERIFICATION_METHODS:
        raise RequestError(_l("выберите, как установлена личность заявителя"), "verification_method")
    note = (note or "").strip() or None
    if method == "document":
        if document_type not in DOCUMENT_TYPES:
            raise RequestError(_l("укажите, какой документ предъявлен"), "verification_document")
        if note and _DOCUMENT_NUMBER.search(note):
            raise RequestError(_l("не записывайте номер документа: достаточно вида документа и того, что он "
                               "предъявлен"), "verification_note", "document_number")
        _no_personal_values(note, "verification_note", req.citizen_id)
    else:
        document_type = note = None
    now = utcnow()
    req.verification_method = method
    req.verification_document = document_type
    req.verification_note = note[:2000] if note else None
    req.verification_by = user.id
    req.verified_at = now if method == "document" else None
    req.delivery_method = "print" if method == "document" else "self_service"
    audit.record("dsr.verify", citizen_id=req.citizen_id, purpose=consent.DSR_PURPOSE,
                 detail=f"request {req.id} method={method} document={document_type or '-'}", actor=_actor_of(user))
    db.session.commit()
    return req


def approve_export(req: DataSubjectRequest, *, user) -> DataSubjectRequest:
    """A second DPO approves answering access request ``req`` with an export: only after the way the
    identity is established was recorded, and never by the DPO who recorded it (code ``four_eyes``).
    Logs ``dsr.export_approve``. Raises :class:`RequestError`."""
    require_role(user, "dpo")
    if req.type != "access":
        raise RequestError(_l("утверждается только ответ на запрос сведений и данных"), "type", "not_access")
    if req.closed:
        raise RequestError(_l("запрос уже закрыт"), "status", "closed")
    if req.verification_method is None:
        raise RequestError(_l("сначала запишите, как установлена личность заявителя"), "verification_method",
                           "not_verified")
    if req.export_approved_by is not None:
        raise RequestError(_l("ответ уже утверждён"), "export_approved_by", "already_approved")
    if req.verification_by == user.id:
        raise RequestError(_l("утвердить выгрузку должен другой ответственный за ПДн (принцип четырёх глаз)"),
                           "export_approved_by", "four_eyes")
    req.export_approved_by = user.id
    req.export_approved_at = utcnow()
    audit.record("dsr.export_approve", citizen_id=req.citizen_id, purpose=consent.DSR_PURPOSE,
                 detail=f"request {req.id} delivery={req.delivery_method}", actor=_actor_of(user))
    db.session.commit()
    return req


def check_deliverable(req: DataSubjectRequest, method: str) -> None:
    """Raise :class:`RequestError` unless access request ``req`` may now be exported by ``method``
    (``print`` or ``self_service``): the identity step recorded for that way of delivery and a second
    DPO's approval, and the request still open (an answered one hands nothing out again: re-audit N4).
    Nothing is read or written."""
    if req.type != "access":
        raise RequestError(_l("выгрузка — ответ на запрос сведений и данных"), "type", "not_access")
    if req.status == "rejected":
        raise RequestError(_l("в запросе отказано"), "status", "closed")
    if req.status == "answered":  # the answer was given: the export is not handed out again
        raise RequestError(_l("запрос закрыт: ответ уже дан, выгрузка по нему больше не выдаётся"), "status", "closed")
    if req.verification_method is None:
        raise RequestError(_l("сначала запишите, как установлена личность заявителя"), "verification_method",
                           "not_verified")
    if req.export_approved_by is None:
        raise RequestError(_l("выгрузку должен утвердить второй ответственный за ПДн"), "export_approved_by",
                           "not_approved")
    if req.delivery_method != method:
        raise RequestError(_l("ответ на этот запрос выдаётся другим способом: %(method)s",
                              method=_l(DELIVERY_METHODS.get(req.delivery_method or "", "—"))),
                           "delivery_method", "wrong_delivery")
    if method == "print" and req.verified_at is None:
        raise RequestError(_l("личность заявителя не установлена"), "verification_method", "not_verified")


def mark_delivered(req: DataSubjectRequest, method: str, *, actor: audit.Actor, user_id: int | None = None,
                   grant_id: str | None = None) -> None:
    """Note that the export went to the citizen (``method``: ``print`` or ``self_service``; for a
    self-service download ``grant_id`` is the SMS code's grant, and the identity counts as established
    now). Logs ``dsr.deliver``; no commit (the export commits it)."""
    now = utcnow()
    if method == "self_service" and req.verified_at is None:
        req.verified_at = now
        req.verification_grant_id = grant_id
    if req.delivered_at is None:
        req.delivered_at = now
        req.delivered_by = user_id
    audit.record("dsr.deliver", citizen_id=req.citizen_id, purpose=consent.DSR_PURPOSE,
                 detail=f"request {req.id} via {method}" + (f" grant {grant_id}" if grant_id else ""), actor=actor)


def awaiting_self_service(citizen_ids: list[str]) -> list[DataSubjectRequest]:
    """Approved access requests of these citizens whose answer is a self-service download."""
    if not citizen_ids:
        return []
    return list(db.session.execute(db.select(DataSubjectRequest).where(
        DataSubjectRequest.citizen_id.in_(citizen_ids), DataSubjectRequest.type == "access",
        DataSubjectRequest.delivery_method == "self_service", DataSubjectRequest.export_approved_by.isnot(None),
        DataSubjectRequest.status != "rejected").order_by(DataSubjectRequest.received_at)).scalars())


def answer(req: DataSubjectRequest, note: str, *, user, rejected: bool = False) -> DataSubjectRequest:
    """Close a request: answered (what was done) or ``rejected`` (a reasoned refusal). An access
    request is answered only after its export was produced (:func:`crm.dpo.services.export_citizen`).
    Erasures are closed by :func:`approve_erasure` / :func:`reject_erasure`. Logs ``dsr.answer``."""

    require_role(user, "dpo")
    note = (note or "").strip()
    if req.closed:
        raise RequestError(_l("запрос уже закрыт"), "status", "closed")
    if req.type == "erasure":
        raise RequestError(_l("уничтожение утверждается вторым сотрудником"), "type", "needs_approval")
    if not note:
        raise RequestError(_l("опишите ответ заявителю (что сделано или почему отказано)"), "note")
    if req.type == "access" and not rejected and req.export_sha256 is None:
        raise RequestError(_l("сначала сформируйте выгрузку данных для ответа"), "export", "no_export")
    if req.type == "access" and not rejected and req.delivered_at is None:
        raise RequestError(_l("выгрузка ещё не выдана заявителю"), "export", "not_delivered")
    _no_personal_values(note, "note", req.citizen_id)
    req.status = "rejected" if rejected else "answered"
    req.answered_at = utcnow()
    req.answered_by = user.id
    req.answer_note = note[:5000]
    audit.record("dsr.answer", citizen_id=req.citizen_id, purpose=req.purpose_code or audit.REPORT_PURPOSE,
                 detail=f"request {req.id} {req.status}")
    db.session.commit()
    return req


def close_by_system(req: DataSubjectRequest, note: str, *, actor: audit.Actor) -> None:
    """Mark a request done by a job (the retention job destroyed what a withdrawal asked); no commit."""
    req.status = "answered"
    req.answered_at = utcnow()
    req.answer_note = note[:5000]
    audit.record("dsr.answer", citizen_id=req.citizen_id, purpose=req.purpose_code or audit.REPORT_PURPOSE,
                 detail=f"request {req.id} answered", actor=actor)


def messages_for(citizen_id: str) -> list[SmsMessage]:
    return list(db.session.execute(db.select(SmsMessage).where(SmsMessage.citizen_id == citizen_id)
                                   .order_by(SmsMessage.created_at)).scalars())


def request_dict(r: DataSubjectRequest) -> dict:
    iso = lambda d: d.isoformat() if d else None  # noqa: E731
    return {"id": r.id, "type": r.type, "type_label": TYPES[r.type], "purpose": r.purpose_code, "channel": r.channel,
            "received_at": iso(r.received_at), "due_at": iso(r.due_at), "extended_due_at": iso(r.extended_due_at),
            "extension_reason": r.extension_reason, "status": r.status, "answered_at": iso(r.answered_at),
            "answer": r.answer_note}


# --- erasure with four-eyes approval --------------------------------------------------------------

def request_erasure(citizen_id: str, reason: str, *, user, channel: str = "paper",
                    received_at: datetime | None = None) -> DataSubjectRequest:
    """Ask for the destruction of all of a citizen's personal data; a second person must approve
    (:func:`approve_erasure`). ``reason``: why (the subject's demand, the purpose achieved …), goes
    into the destruction act. Logs ``erasure.request``. Raises :class:`RequestError`."""

    require_role(user, "dpo")
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise RequestError(_l("укажите основание уничтожения"), "reason")
    citizen = citizens.get(citizen_id)
    if citizen is None:
        raise RequestError(_l("заявитель не найден"), "citizen_id", "not_found")
    if citizen.erased_at is not None:
        raise RequestError(_l("данные заявителя уже уничтожены"), "citizen_id", "erased")
    _no_personal_values(reason, "reason", citizen_id)
    pending = [r for r in for_citizen(citizen_id) if r.type == "erasure" and r.status == "awaiting_approval"]
    if pending:
        raise RequestError(_l("уничтожение уже ждёт утверждения"), "citizen_id", "pending")
    req = register(citizen_id, "erasure", channel=channel, note=reason, received_at=received_at, user_id=user.id,
                   commit=False)
    req.status = "awaiting_approval"
    req.requested_by = user.id
    audit.record("erasure.request", citizen_id=citizen_id, purpose=audit.REPORT_PURPOSE, detail=f"request {req.id}")
    db.session.commit()
    return req


def approve_erasure(req: DataSubjectRequest, *, user) -> DestructionAct:
    """The second person approves: the citizen is crypto-shredded by
    :func:`crm.security.shredding.erase_citizen` (acting as the approver), the SMS outbox rows are
    cleared, the request is closed and a :class:`DestructionAct` is made. The approval and the
    erasure commit together. Raises :class:`RequestError` (code ``four_eyes`` when the requester
    approves their own request)."""

    require_role(user, "dpo")
    if req.type != "erasure" or req.status != "awaiting_approval":
        raise RequestError(_l("этот запрос не ждёт утверждения"), "status", "not_pending")
    if req.requested_by == user.id:
        raise RequestError(_l("утвердить уничтожение должен другой сотрудник (принцип четырёх глаз)"), "approved_by",
                           "four_eyes")
    req.approved_by = user.id
    req.approved_at = utcnow()
    req.status = "answered"
    req.answered_at = req.approved_at
    req.answered_by = user.id
    req.answer_note = "данные уничтожены"
    audit.record("erasure.approve", citizen_id=req.citizen_id, purpose=audit.REPORT_PURPOSE, detail=f"request {req.id}")
    _clear_outbox(req.citizen_id)
    try:
        record = erase_citizen(req.citizen_id, req.note or "по решению оператора", actor=user)
    except ErasureError as exc:
        db.session.rollback()
        raise RequestError(exc.args[0], "citizen_id", "erasure_failed") from None
    req = db.session.get(DataSubjectRequest, req.id)
    req.destruction_record_id = record.id
    requester = users.get(req.requested_by)
    return make_act(record, request=req, requested_by=requester, approved_by=user, legal_basis=TYPE_BASIS["erasure"])


def reject_erasure(req: DataSubjectRequest, note: str, *, user) -> DataSubjectRequest:
    """The second person refuses (a reason is required). Logs ``erasure.reject``."""

    require_role(user, "dpo")
    note = (note or "").strip()
    if req.type != "erasure" or req.status != "awaiting_approval":
        raise RequestError(_l("этот запрос не ждёт утверждения"), "status", "not_pending")
    if not note:
        raise RequestError(_l("укажите причину отказа"), "note")
    _no_personal_values(note, "note", req.citizen_id)
    req.status = "rejected"
    req.answered_at = utcnow()
    req.answered_by = user.id
    req.answer_note = note[:5000]
    audit.record("erasure.reject", citizen_id=req.citizen_id, purpose=audit.REPORT_PURPOSE, detail=f"request {req.id}")
    db.session.commit()
    return req


def _clear_outbox(citizen_id: str) -> int:
    """De-identify the citizen's SMS outbox rows (number and text); no commit."""
    rows = messages_for(citizen_id)
    now = utcnow()
    for m in rows:
        if m.to_masked is not None or m.body is not None or m.body_enc is not None:
            m.to_masked = m.body = m.body_enc = None
            m.deidentified_at = now
    return len(rows)


def _person(user) -> str:

    if user is None:
        return ""
    if isinstance(user, audit.Actor):
        return f"{user.name} ({ROLE_NAMES_RU.get(user.role, user.role)})"
    return f"{user.display_name} ({ROLE_NAMES_RU.get(user.role, user.role)}, логин {user.username})"


def make_act(record, *, request: DataSubjectRequest | None, requested_by, approved_by,
             legal_basis: str = "") -> DestructionAct:
    """Write the destruction act for destruction record ``record`` (idempotent: the existing act
    is returned). ``requested_by`` / ``approved_by``: users or :class:`crm.security.audit.Actor`.
    Commits."""

    existing = db.session.execute(db.select(DestructionAct).where(
        DestructionAct.destruction_record_id == record.id)).scalar_one_or_none()
    if existing is not None:
        return existing
    name, address = consent.controller()
    numbers = [n for found in hooks.fire("citizen.appeal_numbers", citizen_id=record.citizen_id) for n in found]
    subject = f"заявитель, идентификатор {record.citizen_id}" + (
        f"; обращения № {', '.join(sorted(numbers))}" if numbers else "")
    cats = [c for c in (record.categories or "").split(",") if c]
    year = local_date(record.at).year
    count = db.session.execute(db.select(db.func.count()).select_from(DestructionAct).where(
        DestructionAct.number.like(f"{year}-%"))).scalar_one()
    act = DestructionAct(number=f"{year}-{count + 1:05d}", destruction_record_id=record.id,
                         citizen_id=record.citizen_id, request_id=request.id if request else None, subject_ref=subject,
                         controller_name=name[:300], controller_address=address[:300],
                         information_system=INFORMATION_SYSTEM,
                         categories=", ".join(CATEGORY_RU.get(c, c) for c in cats) or "—",
                         reason=record.reason, legal_basis=legal_basis or "152-ФЗ ст. 21",
                         method=record.method, destroyed_at=record.at,
                         requested_by_id=getattr(requested_by, "id", None), requested_by=_person(requested_by)[:200] or "—",
                         approved_by_id=getattr(approved_by, "id", None), approved_by=_person(approved_by)[:200] or None)
    db.session.add(act)
    audit.record("erasure.act", citizen_id=record.citizen_id, purpose=audit.REPORT_PURPOSE,
                 detail=f"act {act.number} record {record.id}", actor=audit.system_actor("destruction_act"))
    db.session.commit()
    return act


def acts(limit: int = 500) -> list[DestructionAct]:
    return list(db.session.execute(db.select(DestructionAct).order_by(DestructionAct.created_at.desc())
                                   .limit(limit)).scalars())


def get_act(act_id: str) -> DestructionAct | None:
    return db.session.get(DestructionAct, act_id)


def act_for_record(record_id: str) -> DestructionAct | None:
    """The destruction act of destruction record ``record_id``, if one was written."""
    return db.session.execute(db.select(DestructionAct).where(
        DestructionAct.destruction_record_id == record_id)).scalar_one_or_none()


def destruction_record(record_id: str):

    return db.session.get(DestructionRecord, record_id)
