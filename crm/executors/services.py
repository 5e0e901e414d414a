"""The executors directory: create, list, look up. Other features reach executors only through this
module (:func:`get`, :func:`view`, :func:`list_executors`, :func:`create`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import sqlalchemy as sa

from crm.buildings import services as buildings
from crm.db import db
from crm.executors.models import KINDS, Executor
from crm.i18n import N_, lazy_gettext as _l
from crm.security import audit

KIND_NAMES = {"emergency_dispatch": N_("Аварийно-диспетчерская служба (АДС)"),
              "management_company": N_("Управляющая организация"),
              "utility_supplier": N_("Ресурсоснабжающая организация (РСО)"),
              "contractor": N_("Подрядная организация")}


class ExecutorError(ValueError):
    """Invalid executor data; ``field`` names the offending field; Russian message."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def get(executor_id: int | None) -> Executor | None:
    return db.session.get(Executor, executor_id) if executor_id is not None else None


def view(e: Executor) -> dict:
    return {"id": e.id, "name": e.name, "kind": e.kind, "phone": e.phone, "email": e.email,
            "address": e.address, "topics": list(e.topics or []), "building_ids": list(e.building_ids or []),
            "active": e.active}


def list_executors(*, kind: str | None = None, topic: str | None = None, active_only: bool = False) -> list[Executor]:
    """The directory by name; ``topic`` keeps the executors serving it (or serving any topic)."""
    q = sa.select(Executor).order_by(Executor.name)
    if kind:
        q = q.where(Executor.kind == kind)
    if active_only:
        q = q.where(Executor.active.is_(True))
    rows = list(db.session.execute(q).scalars())
    if topic:
        rows = [e for e in rows if not e.topics or topic in e.topics]
    return rows


def create(name: str, kind: str, *, topics: list[str] | None = None, phone: str | None = None,
           email: str | None = None, address: str | None = None, building_ids: list[int] | None = None,
           actor=None) -> Executor:
    """Add an executor to the directory (committed). ``building_ids``: the houses of the buildings
    register it serves (empty: any). Raises :class:`ExecutorError` for an empty or taken name, an
    unknown kind, bad topics or a building not in the register."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ExecutorError(_l("укажите название исполнителя (до 200 символов)"), "name")
    if kind not in KINDS:
        raise ExecutorError(_l("неизвестный вид исполнителя «%(kind)s»; допустимы: %(kinds)s",
                               kind=kind, kinds=', '.join(KINDS)), "kind")
    topics = [str(t).strip() for t in (topics or [])]
    if any(not t or len(t) > 30 for t in topics):
        raise ExecutorError(_l("тематика — непустой код до 30 символов"), "topics")
    houses = sorted({int(b) for b in (building_ids or [])})
    unknown = [b for b in houses if buildings.get(b) is None]
    if unknown:
        raise ExecutorError(_l("дома %(id)s нет в реестре домов", id=unknown[0]), "building_ids")
    if db.session.execute(sa.select(Executor.id).where(Executor.name == name)).first() is not None:
        raise ExecutorError(_l("исполнитель «%(name)s» уже есть в справочнике", name=name), "name")
    executor = Executor(name=name, kind=kind, topics=sorted(set(topics)), building_ids=houses, phone=(phone or None),
                        email=(email or None), address=(address or None), active=True)
    db.session.add(executor)
    db.session.flush()
    audit.record("executor.create", detail=f"executor={executor.id} kind={kind}",
                 **({"actor": actor} if actor is not None else {}))
    db.session.commit()
    return executor


# --- the hand-over suggestion ----------------------------------------------------------------------

#: Why an executor is suggested (the API's ``reasons``): it lists the appeal's topic, it lists the
#: appeal's building, it is the emergency dispatch (АДС) and the appeal an emergency.
REASONS = ("topic", "building", "emergency")


@dataclass(frozen=True)
class Suggestion:
    """An executor that may take an appeal: ``score`` (higher first), ``reasons`` (:data:`REASONS`),
    ``open_appeals``: how many appeals it has in hand (the tie-breaker: the less loaded first)."""

    executor: Executor
    score: int
    reasons: tuple[str, ...] = field(default_factory=tuple)
    open_appeals: int = 0


def suggest(*, topic: str, building_id: int | None = None, category: str | None = None,
            loads: Mapping[int, int] | None = None, limit: int = 5) -> list[Suggestion]:
    """The executors to hand an appeal of ``topic`` (and ``category``) on ``building_id`` over to, best
    first — the rule of Doma's auto-assignment (open-condo ``TicketAutoAssignment``: an employee whose
    specialisation scope matches the ticket's classifier and whose property scope holds the ticket's
    property): an active executor is eligible when it serves the topic (lists it, or lists no topic:
    any) and the building (lists it, or lists none; an appeal with no building passes every
    executor's building rule). Ranked by ``score``: +2 for naming the topic, +2 for naming the
    building (a specialist of that house before a generalist), +1 for the emergency dispatch on an
    emergency; then by ``loads`` (``{executor_id: open appeals}``, fewer first), then by name. At most
    ``limit``."""
    loads = loads or {}
    out = []
    for e in list_executors(active_only=True):
        topics, houses = list(e.topics or []), [int(b) for b in (e.building_ids or [])]
        if topics and topic not in topics:
            continue
        if houses and building_id is not None and int(building_id) not in houses:
            continue
        reasons = []
        if topics:
            reasons.append("topic")
        if houses and building_id is not None:
            reasons.append("building")
        if category == "emergency" and e.kind == "emergency_dispatch":
            reasons.append("emergency")
        score = 2 * ("topic" in reasons) + 2 * ("building" in reasons) + ("emergency" in reasons)
        out.append(Suggestion(e, score, tuple(reasons), int(loads.get(e.id, 0))))
    out.sort(key=lambda s: (-s.score, s.open_appeals, s.executor.name))
    return out[:limit]
