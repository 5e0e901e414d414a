"""The executors directory: create, list, look up. Other features reach executors only through this
module (:func:`get`, :func:`view`, :func:`list_executors`, :func:`create`)."""
from __future__ import annotations

import sqlalchemy as sa

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
            "address": e.address, "topics": list(e.topics or []), "active": e.active}


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
           email: str | None = None, address: str | None = None, actor=None) -> Executor:
    """Add an executor to the directory (committed). Raises :class:`ExecutorError` for an empty or
    taken name, an unknown kind or bad topics."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ExecutorError(_l("укажите название исполнителя (до 200 символов)"), "name")
    if kind not in KINDS:
        raise ExecutorError(_l("неизвестный вид исполнителя «%(kind)s»; допустимы: %(kinds)s",
                               kind=kind, kinds=', '.join(KINDS)), "kind")
    topics = [str(t).strip() for t in (topics or [])]
    if any(not t or len(t) > 30 for t in topics):
        raise ExecutorError(_l("тематика — непустой код до 30 символов"), "topics")
    if db.session.execute(sa.select(Executor.id).where(Executor.name == name)).first() is not None:
        raise ExecutorError(_l("исполнитель «%(name)s» уже есть в справочнике", name=name), "name")
    executor = Executor(name=name, kind=kind, topics=sorted(set(topics)), phone=(phone or None),
                        email=(email or None), address=(address or None), active=True)
    db.session.add(executor)
    db.session.flush()
    audit.record("executor.create", detail=f"executor={executor.id} kind={kind}",
                 **({"actor": actor} if actor is not None else {}))
    db.session.commit()
    return executor
