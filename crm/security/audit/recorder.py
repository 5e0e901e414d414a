"""Recording an access-log entry: who acts (:class:`Actor`) and :func:`record`, which queues the
entry on the session; :mod:`crm.security.audit.chain` numbers, hashes and writes it at commit."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator

from flask import g, has_app_context, has_request_context, request
from flask_login import current_user
from sqlalchemy.orm import Session

from crm.db import db, utcnow
from crm.security.audit.chain import _PENDING


@dataclass
class Actor:
    id: int | None
    name: str
    role: str


def system_actor(job: str) -> Actor:
    """The actor for a background job or CLI command."""
    return Actor(None, f"job:{job}", "system")


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    """Within this block of a request or a job, entries that name no actor name ``actor`` (a citizen
    on the self-service pages downloading their data: the reads the export makes are theirs, not
    "anonymous"; the telephony drain building a PBX's event: ``pbx:<source>``, not the job)."""
    previous = g.get("_crm_audit_actor")
    g._crm_audit_actor = actor
    try:
        yield
    finally:
        g._crm_audit_actor = previous


def current_actor() -> Actor:
    """The signed-in user of this request, or an anonymous actor (a request without sign-in).
    Outside a request: the RQ job being run (``job:<function>``), else an administrator's command
    (``job:cli``: ``crm demo-data`` and the like) — never "anonymous", which on the DPO's pages
    reads as someone who did not sign in."""
    if not has_request_context():
        if has_app_context() and g.get("_crm_audit_actor") is not None:  # a job acting for someone (acting_as)
            return g._crm_audit_actor
        try:
            from rq import get_current_job

            job = get_current_job()
        except Exception:  # no RQ connection in this context
            job = None
        return system_actor(job.func_name.rsplit(".", 1)[-1] if job is not None else "cli")
    if g.get("_crm_audit_actor") is not None:
        return g._crm_audit_actor
    try:
        if current_user and current_user.is_authenticated:
            return Actor(current_user.id, current_user.username, current_user.role)
    except Exception:
        pass
    return Actor(None, "anonymous", "none")


def request_origin() -> tuple[str | None, str | None]:
    """``(ip, user_agent)`` of the current request for an access-log entry, ``(None, None)`` outside
    a request; at most 64 and 200 characters.

    The address is ``request.remote_addr`` only: behind a proxy, ProxyFix (``CRM_TRUSTED_PROXIES``)
    sets it from ``X-Forwarded-For``; the header itself is client-supplied and would let anyone write
    any address into the log. Every entry takes its address from here."""
    if not has_request_context():
        return None, None
    ip = (request.remote_addr or "")[:64] or None
    ua = (request.user_agent.string or "")[:200] or None
    return ip, ua


def record(action: str, *, citizen_id: str | None = None, fields: Iterable[str] = (), purpose: str | None = None,
           appeal_id: str | None = None, call_id: str | None = None, outcome: str = "ok",
           detail: str | None = None, actor: Actor | None = None, session: Session | None = None) -> None:
    """Queue an access-log entry on the session; it is chained and written at commit.

    ``fields`` are field categories (``full_name``, ``phone`` …), never values; ``purpose`` a
    processing-purpose code (``appeal_processing`` …); ``appeal_id``/``call_id`` what the access
    serves. IP and user agent are taken from the request, if any."""
    session = session if session is not None else db.session()
    actor = actor or current_actor()
    ip, ua = request_origin()
    entry = dict(at=utcnow(), actor_id=actor.id, actor=actor.name, actor_role=actor.role, action=action,
                 citizen_id=citizen_id, fields=",".join(sorted(set(fields))), purpose=purpose,
                 appeal_id=appeal_id, call_id=call_id, ip=ip, user_agent=ua, outcome=outcome, detail=detail)
    if not session.in_transaction():
        session.begin()  # so that a rollback before any SQL still discards the entry (see _after_rollback)
    session.info.setdefault(_PENDING, []).append(entry)
