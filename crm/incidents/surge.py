"""Surge detection: ``CRM_SURGE_APPEALS`` (3) appeals on one house and topic within
``CRM_SURGE_WINDOW_MIN`` (60) minutes propose an incident to the supervisors — once per surge.

:mod:`crm.appeals` calls :func:`consider` after each registration with the house's recent appeal times
(it owns the appeals table). A surge is proposed once: while a proposal for that house and topic is
pending, later appeals only update its count; after a supervisor accepted or dismissed it, the same
house and topic are proposed again only once a new window of appeals has gathered after the decision;
no proposal while an open incident already covers the house and topic (the operator links the appeals
to it). The supervisors see the proposals on the incidents page and, through the ``incident.proposed``
hook, as an in-app notification (:mod:`crm.dispatch`)."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from crm import hooks
from crm.buildings import services as buildings
from crm.db import atomic, db, utcnow
from crm.i18n import lazy_gettext as _l
from crm.incidents import services
from crm.incidents.catalog import TOPICS
from crm.incidents.models import Incident, IncidentProposal

log = logging.getLogger(__name__)


def settings() -> tuple[int, timedelta]:
    """``(appeals, window)`` from ``CRM_SURGE_APPEALS`` and ``CRM_SURGE_WINDOW_MIN``."""
    cfg = current_app.config
    return max(2, int(cfg["CRM_SURGE_APPEALS"])), timedelta(minutes=float(cfg["CRM_SURGE_WINDOW_MIN"]))


def consider(building_id: int | None, topic: str, appeal_times: list[datetime],
             now: datetime | None = None) -> IncidentProposal | None:
    """After an appeal on ``building_id`` and ``topic`` was registered: ``appeal_times`` are the
    creation times (aware UTC) of that house's appeals on that topic in the last window (the new one
    included). Returns the new proposal (committed, ``incident.proposed`` fired) or None: too few
    appeals, a topic incidents do not cover, an open incident already covering it, or a proposal of
    this surge already made (its count is brought up to date). Never raises: a failed proposal must
    not undo the appeal (logged)."""
    if building_id is None or topic not in TOPICS:
        return None
    now = now or utcnow()
    need, window = settings()
    recent = sorted(t for t in appeal_times if t >= now - window)
    if len(recent) < need:
        return None
    try:
        return _propose(building_id, topic, recent, now)
    except IntegrityError:  # a concurrent registration proposed this surge first
        db.session.rollback()
        return None
    except Exception:
        db.session.rollback()
        log.exception("surge proposal for building %s, topic %s failed", building_id, topic)
        return None


def _propose(building_id: int, topic: str, recent: list[datetime], now: datetime) -> IncidentProposal | None:
    if any(i.topic == topic for i in services.active_for(building_id=building_id, topic=topic, now=now)):
        return None
    latest = db.session.execute(sa.select(IncidentProposal).where(
        IncidentProposal.building_id == building_id, IncidentProposal.topic == topic)
        .order_by(IncidentProposal.created_at.desc(), IncidentProposal.id.desc()).limit(1)).scalar_one_or_none()
    if latest is not None and latest.status == "pending":
        latest.appeals_count = max(latest.appeals_count, len(recent))
        latest.last_at = max(latest.last_at, recent[-1])
        db.session.commit()
        return None
    if latest is not None:
        # decided: a new proposal only for appeals that came after the decision, enough of them again
        after = [t for t in recent if t > (latest.decided_at or latest.created_at)]
        if len(after) < settings()[0]:
            return None
        recent = after
    proposal = IncidentProposal(building_id=building_id, topic=topic, status="pending", appeals_count=len(recent),
                                first_at=recent[0], last_at=recent[-1], created_at=now)
    db.session.add(proposal)
    db.session.commit()
    hooks.fire("incident.proposed", proposal_id=proposal.id, building_id=building_id, topic=topic,
               appeals_count=proposal.appeals_count)
    return proposal


def pending() -> list[IncidentProposal]:
    """The proposals awaiting a supervisor, newest first."""
    return list(db.session.execute(sa.select(IncidentProposal).where(IncidentProposal.status == "pending")
                                   .order_by(IncidentProposal.created_at.desc())).scalars())


def get(proposal_id) -> IncidentProposal | None:
    try:
        return db.session.get(IncidentProposal, int(proposal_id))
    except (TypeError, ValueError):
        return None


def building_address(proposal: IncidentProposal) -> str:
    house = buildings.get(proposal.building_id)
    return house.address if house is not None else f"#{proposal.building_id}"


@atomic
def decide(user, proposal_id, *, accept: bool, text: str | None = None, kind: str = "emergency",
           starts_at: datetime | None = None, ends_at: datetime | None = None) -> IncidentProposal:
    """A supervisor's decision on a pending proposal, committed: ``accept`` registers the incident on
    the proposal's house and topic (``text`` for the operators; starting at the surge's first appeal
    unless ``starts_at``) and links it; else the proposal is dismissed. Raises
    :class:`crm.incidents.services.IncidentError` (unknown, already decided, bad incident input).
    Accepting links the surge's appeals still being worked on to the incident (hook
    ``incident.surge_accepted``, same transaction), so closing it resolves them."""
    proposal = get(proposal_id)
    if proposal is None:
        raise services.IncidentError(_l("предложение не найдено"), "proposal_id", "not_found", 404)
    if proposal.status != "pending":
        raise services.IncidentError(_l("по этому предложению уже принято решение"), "proposal_id", "decided", 409)
    if accept:
        incident: Incident = services.create(user, topic=proposal.topic, text=text or "", kind=kind,
                                             starts_at=starts_at or proposal.first_at, ends_at=ends_at,
                                             building_ids=[proposal.building_id], commit=False)
        proposal.incident_id = incident.id
        # the appeals of the surge become the incident's (crm.appeals links its open ones)
        hooks.fire("incident.surge_accepted", incident_id=incident.id, building_id=proposal.building_id,
                   topic=proposal.topic, since=proposal.first_at)
    proposal.status = "accepted" if accept else "dismissed"
    proposal.decided_at, proposal.decided_by = utcnow(), getattr(user, "id", None)
    db.session.commit()
    return proposal
