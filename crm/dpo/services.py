"""The data-protection officer's queries: the access log filtered, the per-citizen access report,
the answer to an access request (everything held on a citizen), the staff by id. The DPO reads logs,
consent records and, for an access request, what the citizen may see; every read of personal data
goes through the owning feature's service, so it is logged as usual."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime

from sqlalchemy import select

from crm import hooks
from crm.appeals import services as appeals
from crm.calls import services as calls
from crm.citizens import services as citizens
from crm.consent import rights, selfservice
from crm.consent import services as consent
from crm.db import db, utcnow
from crm.i18n import N_, lazy_gettext as _l
from crm.security import audit
from crm.security.models import AccessLogEntry
from crm.security.permissions import ROLE_NAMES_RU, require_role
from crm.users import services as users


def staff() -> dict:
    """``{user id: user}`` of every staff member (the log names them by id)."""
    return {u.id: u for u in users.list_users()}


def known_citizen(citizen_id: str) -> bool:
    """A citizen with this id exists, or did (the access log still names it)."""
    return citizens.get(citizen_id) is not None or bool(search(citizen_id=citizen_id, limit=1)[0])


def actor_of(user) -> audit.Actor | None:
    """The access-log actor of a signed-in user (None: no user)."""
    return audit.Actor(user.id, user.username, user.role) if user is not None else None


# --- the access log and the per-citizen report -------------------------------------------------------

def search(*, citizen_id: str = "", actor: str = "", action: str = "", purpose: str = "",
           start: datetime | None = None, end: datetime | None = None, before: int | None = None,
           limit: int = 100) -> tuple[list[AccessLogEntry], bool]:
    """Entries newest first, filtered by exact citizen id, staff login, action, purpose and UTC
    period ``[start, end)``; keyset paging with ``before`` (a seq). Returns ``(rows, more)``.
    Entries hold ids, never personal values: nothing to decrypt, nothing to log."""
    E = AccessLogEntry  # noqa: N806
    q = select(E).order_by(E.seq.desc()).limit(limit + 1)
    for column, value in ((E.citizen_id, citizen_id), (E.actor, actor), (E.action, action), (E.purpose, purpose)):
        if value:
            q = q.where(column == value)
    if start is not None:
        q = q.where(E.at >= start)
    if end is not None:
        q = q.where(E.at < end)
    if before:
        q = q.where(E.seq < before)
    rows = list(db.session.execute(q).scalars())
    return rows[:limit], len(rows) > limit


def access_report(citizen_id: str, *, start: datetime | None = None, end: datetime | None = None,
                  fmt: str = "html", actor: audit.Actor | None = None) -> dict:
    """Who read or changed this citizen's data, when and why (152-ФЗ ст. 14: the data subject's right
    to know how their data are processed), for a page, CSV or printable document.

    ``start``/``end``: UTC bounds (None = open). Returns ``{"citizen": masked card or None,
    "entries": [{seq, at, actor, actor_name, actor_role, action, action_label, fields, fields_label,
    purpose, purpose_label, appeal_id, appeal_number, call_id, ip, outcome, detail, hash}], "consents":
    [consent dicts], "head": (seq, hash)}``. Decrypts only the citizen's name (masked card) and logs
    it, plus an ``audit.report`` entry, purpose ``data_subject_request``; commits."""
    citizen = citizens.get(citizen_id)
    card = citizens.view(citizen, purpose=audit.REPORT_PURPOSE, commit=False) if citizen is not None else None
    q = select(AccessLogEntry).where(AccessLogEntry.citizen_id == citizen_id).order_by(AccessLogEntry.seq)
    if start is not None:
        q = q.where(AccessLogEntry.at >= start)
    if end is not None:
        q = q.where(AccessLogEntry.at < end)
    rows = list(db.session.execute(q).scalars())
    people = staff()
    purposes = consent.purpose_names()
    numbers: dict[str, str] = {}
    for appeal_id in {r.appeal_id for r in rows if r.appeal_id}:
        appeal = appeals.get(appeal_id)
        numbers[appeal_id] = appeal.number if appeal is not None else appeal_id[:8]
    entries = []
    for r in rows:
        labels = audit.entry_labels(r, people.get(r.actor_id), purposes)
        entries.append({
            **labels, "seq": r.seq, "at": r.at, "actor": r.actor, "actor_role": r.actor_role,
            "actor_name": labels["actor_label"], "action": r.action, "fields": audit.entry_fields(r),
            "purpose": r.purpose, "appeal_id": r.appeal_id, "appeal_number": numbers.get(r.appeal_id),
            "call_id": r.call_id, "ip": r.ip, "outcome": r.outcome, "detail": r.detail, "hash": r.hash})
    consents = [consent.as_dict(e) | consent.labels(e) for e in consent.for_citizen(citizen_id)]
    audit.record("audit.report", citizen_id=citizen_id, fields=["consents"], purpose=audit.REPORT_PURPOSE,
                 detail=f"format={fmt} entries={len(entries)}", actor=actor)
    result = {"citizen": card, "entries": entries, "consents": consents, "head": audit.head()}
    db.session.commit()
    return result


# --- the access export (152-ФЗ ст. 14 ч. 7) ----------------------------------------------------------

def export_citizen(citizen_id: str, *, user, request: rights.DataSubjectRequest) -> dict:
    """The answer to access request ``request`` handed over in person (printed, or the JSON file):
    everything held on the citizen (:func:`_export`). Only once the DPO recorded the identity document
    seen and a second DPO approved (:func:`crm.consent.rights.check_deliverable` with ``print``); logs
    ``dsr.deliver`` and ``dsr.export`` and every read. Raises
    :class:`crm.consent.rights.RequestError` (``not_found``, ``not_verified``, ``not_approved``,
    ``wrong_delivery``) and ``PermissionDenied``."""
    require_role(user, "dpo")
    if request.citizen_id != citizen_id:
        raise rights.RequestError(_l("запрос другого заявителя"), "citizen_id", "not_found")
    rights.check_deliverable(request, "print")
    return _export(citizen_id, actor=actor_of(user), request=request, delivery="print", user_id=user.id)


def export_for_self_service(request: rights.DataSubjectRequest, *, scope: list[str], grant_id: str | None) -> dict:
    """The answer to access request ``request`` downloaded by the citizen on the self-service page.
    ``scope``/``grant_id``: the self-service session (its citizens, the grant it began with); only a
    session begun with an SMS code sent to the registered phone counts as identification
    (:func:`crm.consent.selfservice.signed_in_by_code`), and only for the request's own citizen.
    The reads the export makes are logged as the citizen's (``citizen:selfservice``). Raises
    :class:`crm.consent.rights.RequestError` (``not_found``, ``needs_code``, and as
    :func:`crm.consent.rights.check_deliverable` with ``self_service``)."""
    if request.citizen_id not in scope:
        raise rights.RequestError(_l("запрос не найден"), "request_id", "not_found")
    if not selfservice.signed_in_by_code(grant_id):
        raise rights.RequestError(_l("чтобы скачать свои данные, войдите по коду из SMS"), "code", "needs_code")
    rights.check_deliverable(request, "self_service")
    with audit.acting_as(selfservice.CITIZEN):
        return _export(request.citizen_id, actor=selfservice.CITIZEN, request=request, delivery="self_service",
                       grant_id=grant_id)


def _export(citizen_id: str, *, actor: audit.Actor, request: rights.DataSubjectRequest, delivery: str,
            user_id: int | None = None, grant_id: str | None = None) -> dict:
    """Everything held on the citizen, for an access request (ст. 14 ч. 7): one dict that the views
    render as JSON (machine-readable) and as a printable document.

    Reads through the normal paths so each read is in the access log as usual:
    :func:`crm.citizens.services.view` (card, revealed), then the ``citizen.export`` hook, to which
    the appeals package answers with :func:`crm.appeals.services.export_for_citizen` (each appeal
    with history, each call's transcript, and through ``call.export`` QA's evaluation comments), the
    consent history, the requests, the SMS sent, the access log about the citizen (roles, not staff
    names) and the processing information of the register. Then ``dsr.deliver`` and ``dsr.export``
    are logged, and the request's ``export_sha256`` (SHA-256 of the canonical JSON) and ``export_at``
    are set. Commits.

    Returns ``{"generated_at", "request_id", "controller": {name, address}, "citizen": card,
    "appeals": [appeal dicts + "calls": [call dicts + "evaluations"]], "consents": [...],
    "requests": [...], "sms": [...], "access_log": [...], "processing": [...], "sha256"}``."""
    citizen = citizens.get(citizen_id)
    if citizen is None:
        raise rights.RequestError(_l("заявитель не найден"), "citizen_id", "not_found")
    name, address = consent.controller()
    card = citizens.view(citizen, purpose=consent.DSR_PURPOSE, reveal=True)
    sections: dict = {}  # what the features hold on the citizen (crm.appeals.hooks: appeals, calls, evaluations)
    for part in hooks.fire("citizen.export", citizen_id=citizen_id, purpose=consent.DSR_PURPOSE,
                           erased=card["erased"]):
        sections.update(part or {})
    out_appeals = sections.get("appeals", [])
    consents = []
    for e in consent.for_citizen(citizen_id):
        words, verified = consent.consent_text(e)
        consents.append({**consent.as_dict(e), "text": words, "text_verified": verified,
                         "withdrawn_channel": e.withdrawn_channel})
    requests = [rights.request_dict(r) for r in rights.for_citizen(citizen_id)]
    sms = [{"id": m.id, "at": m.created_at.isoformat(), "purpose": m.purpose, "kind": m.kind, "to": m.to_masked,
            "text": _public_body(m)} for m in rights.messages_for(citizen_id)]
    log = access_report(citizen_id, fmt="export", actor=actor)
    staff_roles = set(ROLE_NAMES_RU)
    access_log = [{"at": e["at"].isoformat(), "action": e["action"], "action_label": e["action_label"],
                   "role": e["actor_role"], "fields": e["fields"], "purpose": e["purpose"], "outcome": e["outcome"],
                   # who, in words: the role for staff (no names), «система: …» for jobs
                   "who": e["role_label"] if e["actor_role"] in staff_roles else e["actor_name"]}
                  for e in log["entries"]]
    processing = [{"purpose": p.code, "name": p.name_ru, "legal_basis": p.legal_basis,
                   "requires_consent": p.requires_consent, "data_categories": p.data_categories,
                   "actions": p.actions, "processing_method": p.processing_method, "recipients": p.recipients,
                   "retention_days": p.retention_days, "retention_basis": p.retention_basis}
                  for p in consent.purposes()]
    now = utcnow()
    result = {"generated_at": now.isoformat(), "request_id": request.id,
              "controller": {"name": name, "address": address}, "citizen": card, "appeals": out_appeals,
              "consents": consents, "requests": requests, "sms": sms, "access_log": access_log,
              # the satisfaction survey's answers (crm.csat), when any
              **({"csat_surveys": sections["csat_surveys"]} if sections.get("csat_surveys") else {}),
              "processing": processing,
              # the other features' sections (crm.incidents: the calls counted on incidents)
              **{k: v for k, v in sections.items() if k != "appeals"},
              "rights": "152-ФЗ ст. 14: вы вправе требовать уточнения, блокирования или уничтожения данных, "
                        "отозвать согласие, обжаловать действия оператора в Роскомнадзор или в суд."}
    digest = hashlib.sha256(json.dumps(result, sort_keys=True, ensure_ascii=False, default=str)
                            .encode("utf-8")).hexdigest()
    result["sha256"] = digest
    request.export_sha256 = digest
    request.export_at = now
    rights.mark_delivered(request, delivery, actor=actor, user_id=user_id, grant_id=grant_id)
    categories = ["full_name", "phone", "email", "address", "apartment", "description", "comment", "transcript",
                  "consents"]
    audit.record("dsr.export", citizen_id=citizen_id, fields=categories, purpose=consent.DSR_PURPOSE,
                 detail=f"request {request.id} sha256={digest[:16]} appeals={len(out_appeals)} via {delivery}",
                 actor=actor)
    db.session.commit()
    return result


def export_summary(citizen_id: str) -> list[tuple[str, int]]:
    """What an access export of this citizen would hold, as categories and counts, for the DPO's view
    of the request (the DPO sees how much, not the texts): ``[(Russian label, marked for translation,
    count), ...]``.
    Counts rows only; nothing is decrypted, so nothing is logged."""
    own_appeals = appeals.for_citizen(citizen_id)
    own_calls = [c for a in own_appeals for c in calls.for_appeal(a.id)]
    entries = db.session.execute(select(db.func.count()).select_from(AccessLogEntry)
                                 .where(AccessLogEntry.citizen_id == citizen_id)).scalar_one()
    return [(N_("обращения"), len(own_appeals)), (N_("звонки"), len(own_calls)),
            (N_("записи"), sum(1 for c in own_calls if c.storage_key)),
            (N_("расшифровки"), sum(1 for c in own_calls if c.status == "done")),
            (N_("согласия"), len(consent.for_citizen(citizen_id))),
            (N_("запросы"), len(rights.for_citizen(citizen_id))),
            ("SMS", len(rights.messages_for(citizen_id))), (N_("записи журнала доступа"), entries)]


def _public_body(m) -> str | None:
    """A message's text for the export: one-time codes are not repeated."""
    return "(одноразовый код)" if m.kind == "code" and m.body else m.body
