"""The queue surge alert of the supervisors' queue board (issue 16, point 3).

A **surge** is the inbound queue well above its usual level, by either measure:

* calls waiting now ≥ ``CRM_QUEUE_SURGE_WAITING`` (10);
* calls that arrived in the last ``CRM_QUEUE_SURGE_WINDOW_MIN`` minutes (10) ≥ the threshold
  ``max(CRM_QUEUE_SURGE_FLOOR, ⌈CRM_QUEUE_SURGE_FACTOR × usual⌉)`` (floor 10, factor 3), where
  *usual* is the mean number of arrivals in the same weekday and hour (``CRM_TIMEZONE``) over the
  previous ``CRM_QUEUE_SURGE_HISTORY_WEEKS`` weeks (4), scaled to the window (an hour's mean × window /
  60). Only weeks whose hour starts at or after the first inbound call ever recorded count, so a new
  installation is not compared with weeks it did not see; with none, the floor alone decides.

When the surge's callers (the calls of the window and those waiting, matched to citizens through the
phone blind index as they came in) include at least ``CRM_QUEUE_SURGE_SAME_BUILDING`` (3) different
citizens of one building — their building being that of their newest appeal, as the IVR finds it — an
incident is suggested there: a link to the incident form with the address and the most frequent
topic of the building's appeals of the last hour prefilled. The surges of appeals on one house and
topic are :mod:`crm.incidents.surge`'s proposals: a pending one is shown with a link to it, not
proposed a second time; a building an open incident already covers links to that incident.

The supervisors are notified once per surge (hook ``queue.surge``, :mod:`crm.dispatch`), naming the
busiest building that calls for an incident, if any. A surge lasts while it is seen again within a
window's length (a Redis key holding the surge's id, refreshed at each sighting); the board checks at
each poll and the worker every ``CRM_QUEUE_SURGE_CHECK_EVERY_S`` seconds (crm.schedule).

A building that comes to call for an incident later in the same surge (its callers reach the threshold
after the surge was announced, or a second building does) is told once more, once per surge and
building (hook ``queue.surge_building``): that is news a supervisor acts on, unlike the surge's figures
changing, which are not notified again. A building "calls for an incident" when at least
``CRM_QUEUE_SURGE_SAME_BUILDING`` of the surge's callers live there and no open incident covers it (a
building with an incident has nothing left to decide; a pending appeal-surge proposal alone was told by
``incident.proposed``). The buildings told are a Redis set per surge id, expiring with the surge's mark;
a set member is claimed (``SADD``) before the hook fires, so concurrent checks (web workers, the worker)
tell a building once, and released when the hook fails, so the next check tries again. The notification's
key (``queue_surge:<surge id>:building:<id>``) keeps it single in the database as well. Only the
suggestions the board shows (the :data:`MAX_SUGGESTIONS` busiest) are considered.
"""
from __future__ import annotations

import logging
import math
from collections import Counter
from datetime import datetime, timedelta

import redis
from flask import current_app, has_request_context, url_for
from sqlalchemy import func, or_, select

from crm import hooks, jobs
from crm.appeals import services as appeals
from crm.buildings import services as buildings
from crm.db import db, utcnow
from crm.i18n import N_, translate
from crm.incidents import services as incidents
from crm.incidents import surge as incident_surge
from crm.incidents.catalog import TOPICS
from crm.telephony.models import TelephonyCall
from crm.timeutil import local_tz

log = logging.getLogger(__name__)

#: How many buildings a surge suggests incidents for, at most (the busiest first).
MAX_SUGGESTIONS = 3


def _cfg(key: str):
    return current_app.config[key]


def _in_calls():
    return select(func.count()).select_from(TelephonyCall).where(TelephonyCall.direction == "in")


def usual_arrivals(now: datetime) -> tuple[float | None, int]:
    """``(usual, weeks)``: the mean arrivals per surge window in ``now``'s weekday and local hour over the
    previous ``CRM_QUEUE_SURGE_HISTORY_WEEKS`` weeks that the records cover (see the module), and how
    many weeks were averaged; ``(None, 0)`` when none is covered."""
    window_min = float(_cfg("CRM_QUEUE_SURGE_WINDOW_MIN"))
    first = db.session.execute(select(func.min(TelephonyCall.queued_at)).where(TelephonyCall.direction == "in")
                               ).scalar_one_or_none()
    if first is None:
        return None, 0
    hour = now.astimezone(local_tz()).replace(minute=0, second=0, microsecond=0)
    counts = []
    for k in range(1, int(_cfg("CRM_QUEUE_SURGE_HISTORY_WEEKS")) + 1):
        start = hour - timedelta(weeks=k)
        if start < first.astimezone(local_tz()).replace(minute=0, second=0, microsecond=0):
            break  # before the first call on record (the installation's start)
        counts.append(db.session.execute(_in_calls().where(
            TelephonyCall.queued_at >= start, TelephonyCall.queued_at < start + timedelta(hours=1))).scalar_one())
    if not counts:
        return None, 0
    return round(sum(counts) / len(counts) * window_min / 60.0, 3), len(counts)


def _suggestions(citizen_ids: list[str], now: datetime) -> list[dict]:
    """Buildings the surge's callers share (≥ ``CRM_QUEUE_SURGE_SAME_BUILDING`` citizens), and the pending
    appeal-surge proposals of :mod:`crm.incidents.surge`, each ``{"building_id", "address", "topic",
    "callers", "appeals", "proposal_id", "incident_id"}`` (the last two None unless a proposal is
    pending / an open incident covers the house); busiest first."""
    need = max(1, int(_cfg("CRM_QUEUE_SURGE_SAME_BUILDING")))
    homes = appeals.newest_buildings(citizen_ids)
    per_building = Counter(homes[c] for c in set(citizen_ids) if c in homes)
    _, proposal_window = incident_surge.settings()
    proposals = {p.building_id: p for p in incident_surge.pending() if p.last_at >= now - proposal_window}
    out: list[dict] = []
    for building_id in sorted(set(b for b, n in per_building.items() if n >= need) | set(proposals),
                              key=lambda b: (-per_building.get(b, 0), -(proposals[b].appeals_count
                                                                        if b in proposals else 0), b)):
        house = buildings.get(building_id)
        if house is None:
            continue
        proposal = proposals.get(building_id)
        if proposal is not None:
            topic, count = proposal.topic, proposal.appeals_count
        else:
            counts = {t: n for t, n in appeals.topic_counts(building_id, now - proposal_window).items() if t in TOPICS}
            topic = next(iter(counts), None)
            count = counts.get(topic, 0) if topic else 0
        open_ = incidents.active_for(building_id=building_id, now=now)
        item = {"building_id": building_id, "address": house.address, "topic": topic,
                "callers": per_building.get(building_id, 0), "appeals": count,
                "proposal_id": proposal.id if proposal is not None else None,
                "incident_id": open_[0].id if open_ else None}
        item["text"] = suggestion_text(item)
        out.append(item)
        if len(out) >= MAX_SUGGESTIONS:
            break
    return out


def detect(now: datetime | None = None, *, waiting: int | None = None, notify: bool = True) -> dict | None:
    """The surge at ``now`` (aware UTC; default now), or None when the queue is at its usual level.

    ``waiting``: the calls waiting now when the caller counted them already (the board), else counted
    here (inbound, unanswered, offered within ``CRM_TELEPHONY_STALE_WAIT_S``). Returns
    ``{"since", "waiting", "waiting_threshold", "arrivals", "window_min", "usual", "usual_weeks",
    "arrivals_threshold", "reasons" (``waiting`` and/or ``arrivals``), "text" (Russian), "incidents"
    (:func:`_suggestions`)}``. With ``notify``, a new surge (none seen within the last window) fires
    ``queue.surge`` once (a Redis key marks it; without Redis nobody is notified, the board still shows
    it) and commits what the subscribers wrote; later in the same surge, each building that has come to call
    for an incident is told once (:func:`_notify_once`)."""
    now = now or utcnow()
    window_min = float(_cfg("CRM_QUEUE_SURGE_WINDOW_MIN"))
    since = now - timedelta(minutes=window_min)
    stale = now - timedelta(seconds=int(_cfg("CRM_TELEPHONY_STALE_WAIT_S")))
    is_waiting = (TelephonyCall.state == "waiting") & (TelephonyCall.queued_at > stale) & (TelephonyCall.queued_at <= now)
    if waiting is None:
        waiting = db.session.execute(_in_calls().where(is_waiting)).scalar_one()
    arrivals = db.session.execute(_in_calls().where(TelephonyCall.queued_at > since,
                                                    TelephonyCall.queued_at <= now)).scalar_one()
    waiting_threshold = max(1, int(_cfg("CRM_QUEUE_SURGE_WAITING")))
    usual, weeks = usual_arrivals(now)
    floor = max(1, int(_cfg("CRM_QUEUE_SURGE_FLOOR")))
    threshold = max(floor, math.ceil(float(_cfg("CRM_QUEUE_SURGE_FACTOR")) * usual - 1e-9)) if usual else floor
    reasons = [r for r, hit in (("waiting", waiting >= waiting_threshold), ("arrivals", arrivals >= threshold)) if hit]
    if not reasons:
        return None
    citizen_ids = list(db.session.execute(select(TelephonyCall.citizen_id).where(
        TelephonyCall.direction == "in", TelephonyCall.citizen_id.is_not(None),
        or_((TelephonyCall.queued_at > since) & (TelephonyCall.queued_at <= now), is_waiting))).scalars())
    surge = {"since": since.isoformat(), "waiting": int(waiting), "waiting_threshold": waiting_threshold,
             "arrivals": int(arrivals), "window_min": window_min, "usual": usual, "usual_weeks": weeks,
             "arrivals_threshold": threshold, "reasons": reasons,
             "incidents": _suggestions(citizen_ids, now)}
    surge["text"] = alert_text(surge)
    if notify:
        _notify_once(surge)
    return surge


def alert_text(surge: dict) -> str:
    """The board's Russian alert (in the request's language), e.g. «Всплеск звонков: ждут ответа 12
    (порог 10); за 10 мин поступило 25 звонков, обычно около 4 (порог 12).»"""
    window = int(surge["window_min"]) if float(surge["window_min"]).is_integer() else surge["window_min"]
    parts = [translate(N_("ждут ответа %(waiting)s (порог %(threshold)s)"), waiting=surge["waiting"],
                       threshold=surge["waiting_threshold"])]
    if surge["usual"] is None:
        parts.append(translate(N_("за %(window)s мин поступило %(arrivals)s (порог %(threshold)s; обычный уровень "
                                  "ещё не известен)"), window=window, arrivals=surge["arrivals"],
                               threshold=surge["arrivals_threshold"]))
    else:
        parts.append(translate(N_("за %(window)s мин поступило %(arrivals)s, обычно около %(usual)s (порог "
                                  "%(threshold)s)"), window=window, arrivals=surge["arrivals"],
                               usual=_number(surge["usual"]), threshold=surge["arrivals_threshold"]))
    return translate(N_("Всплеск звонков: %(details)s."), details="; ".join(parts))


def suggestion_text(s: dict) -> str:
    """One suggestion's Russian line, e.g. «Дом ул. Ленина, д. 5: звонят 4 жителя, обращения по теме
    «Отопление» (3) — возможно, авария.»"""
    topic = translate(TOPICS[s["topic"]]) if s["topic"] in TOPICS else None
    if s["incident_id"] is not None:
        return translate(N_("Дом %(address)s: уже действует инцидент № %(id)s."), address=s["address"], id=s["incident_id"])
    if s["proposal_id"] is not None:
        return translate(N_("Дом %(address)s: %(count)s обращений по теме «%(topic)s» — предложение открыть инцидент "
                            "ждёт решения."), address=s["address"], count=s["appeals"], topic=topic or s["topic"])
    if topic:
        return translate(N_("Дом %(address)s: звонят жители (%(callers)s), обращения по теме «%(topic)s» (%(count)s) — "
                            "возможно, авария: откройте инцидент."), address=s["address"], callers=s["callers"],
                         topic=topic, count=s["appeals"])
    return translate(N_("Дом %(address)s: звонят жители (%(callers)s) — возможно, авария: откройте инцидент."),
                     address=s["address"], callers=s["callers"])


def _number(value: float) -> str:
    return (f"{value:.1f}".rstrip("0").rstrip(".") or "0").replace(".", ",")


def with_links(surge: dict | None) -> dict | None:
    """``surge`` with each suggestion's ``url`` and ``link_text`` (needs a request): the open incident, the pending
    proposal on the incidents page, or the incident form prefilled with the address and topic."""
    if surge is None or not has_request_context():
        return surge
    for s in surge["incidents"]:
        if s["incident_id"] is not None:
            s["url"] = url_for("incidents.incident_detail", incident_id=s["incident_id"])
            s["link_text"] = translate(N_("Открыть страницу инцидента"))
        elif s["proposal_id"] is not None:
            s["url"] = url_for("incidents.incident_list", _anchor=f"proposal-{s['proposal_id']}")
            s["link_text"] = translate(N_("К предложению"))
        else:
            args = {"address": s["address"], **({"topic": s["topic"]} if s["topic"] in TOPICS else {})}
            s["url"] = url_for("incidents.incident_new", **args)
            s["link_text"] = translate(N_("Открыть инцидент"))
    return surge


def _key() -> str:
    return f"{_cfg('CRM_QUEUE_PREFIX')}crm:telephony:surge"


def _buildings_key(surge_id: str) -> str:
    """The set of building ids already told for the surge ``surge_id``."""
    return f"{_key()}:{surge_id}:buildings"


#: KEYS[1]: the surge mark; ARGV: a new surge id, the TTL (s), the building the new surge's own notification
#: names ('' for none), the buildings-set key prefix. A new surge: the mark set to the new id and that
#: building claimed in its set, atomically (a concurrent check cannot tell it a second time). A surge
#: already marked: the mark and its set refreshed. Returns ``{1 (new) | 0, surge id}``.
_SIGHT = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  if ARGV[3] ~= '' then
    local told = ARGV[4] .. ARGV[1] .. ':buildings'
    redis.call('sadd', told, ARGV[3])
    redis.call('expire', told, ARGV[2])
  end
  return {1, ARGV[1]}
end
redis.call('expire', KEYS[1], ARGV[2])
local id = redis.call('get', KEYS[1])
if id then redis.call('expire', ARGV[4] .. id .. ':buildings', ARGV[2]) end
return {0, id or ''}
"""


def calls_for_incident(s: dict) -> bool:
    """True when the suggestion ``s`` is a building the supervisors should be told about: enough of the
    surge's callers live there (``CRM_QUEUE_SURGE_SAME_BUILDING``) and no open incident covers it."""
    return s["callers"] >= max(1, int(_cfg("CRM_QUEUE_SURGE_SAME_BUILDING"))) and s["incident_id"] is None


def _notify_once(surge: dict) -> bool:
    """Tell the supervisors what is new in ``surge``: a new surge (none seen within the last window)
    fires ``queue.surge`` naming the busiest building that calls for an incident; every other building
    that calls for one — at once, or when it comes to later in the surge — fires ``queue.surge_building``,
    once per surge and building (see the module). Commits what the subscribers wrote after each hook.
    True when anything was fired. A Redis or subscriber failure is logged, never raised: the board must
    still answer."""
    ttl = max(60, int(float(_cfg("CRM_QUEUE_SURGE_WINDOW_MIN")) * 60))
    houses = [s for s in surge["incidents"] if calls_for_incident(s)]
    top = houses[0] if houses else None
    try:
        conn = jobs.redis_connection()
        new, raw_id = conn.eval(_SIGHT, 1, _key(), utcnow().strftime("%Y%m%dT%H%M%S%f"), ttl,
                                str(top["building_id"]) if top else "", f"{_key()}:")
    except redis.RedisError:
        log.warning("queue surge: Redis unavailable, supervisors not notified")
        return False
    surge_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id or "")
    if not surge_id:
        return False  # the mark expired between two commands: the next sighting starts a new surge
    if new:
        try:
            hooks.fire("queue.surge", surge_id=surge_id, waiting=surge["waiting"], arrivals=surge["arrivals"],
                       window_min=surge["window_min"], usual=surge["usual"],
                       address=top["address"] if top else None, topic=top["topic"] if top else None)
            db.session.commit()
        except Exception:
            db.session.rollback()
            log.exception("queue surge %s: notifying the supervisors failed", surge_id)
            forget()  # the next sighting tries again
            return False
    fired = bool(new)
    for s in houses:  # the new surge's own building was claimed with its mark: skipped here
        try:
            if not conn.sadd(_buildings_key(surge_id), str(s["building_id"])):
                continue  # told already in this surge
            conn.expire(_buildings_key(surge_id), ttl)
        except redis.RedisError:
            log.warning("queue surge %s: Redis unavailable, building %s not notified", surge_id, s["building_id"])
            return fired
        try:
            hooks.fire("queue.surge_building", surge_id=surge_id, building_id=s["building_id"],
                       address=s["address"], topic=s["topic"], callers=s["callers"], waiting=surge["waiting"],
                       arrivals=surge["arrivals"], window_min=surge["window_min"])
            db.session.commit()
            fired = True
        except Exception:
            db.session.rollback()
            log.exception("queue surge %s: notifying the supervisors of building %s failed", surge_id,
                          s["building_id"])
            try:
                conn.srem(_buildings_key(surge_id), str(s["building_id"]))  # the next check tries again
            except redis.RedisError:
                pass
    return fired


def forget() -> None:
    """End the current surge's mark (tests; the next sighting is a new surge)."""
    try:
        conn = jobs.redis_connection()
        current = conn.get(_key())
        if current:
            conn.delete(_buildings_key(current.decode() if isinstance(current, bytes) else str(current)))
        conn.delete(_key())
    except redis.RedisError:
        pass
