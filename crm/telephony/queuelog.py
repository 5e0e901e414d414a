"""Asterisk's ``queue_log`` read as call events, for PBXs that send no webhook.

Each line is ``epoch|callid|queue|agent|event|data1|data2|…``. The calls' lines become the webhook's
events (:class:`crm.telephony.services.Event`) with an id derived from the line, so importing a file
again (or a longer copy of it) adds nothing twice:

============================  =====================================================================
ENTERQUEUE                    ``newCall`` (data2: the caller's number)
CONNECT                       ``answer`` by the agent (``PJSIP/ivanova`` → ``ivanova``)
COMPLETECALLER/COMPLETEAGENT  ``hangup`` (normalClearing)
ABANDON, EXITWITHKEY,         ``hangup`` before an answer: the call is abandoned (cause ``cancel``,
EXITWITHTIMEOUT, EXITEMPTY    ``exitWithKey``, ``timeout``, ``exitEmpty``)
TRANSFER                      ``hangup`` (cause ``transfer``: transferred out)
PAUSE(ALL)/UNPAUSE(ALL)       the agent's pause state; ADDMEMBER/AGENTLOGIN available,
                              REMOVEMEMBER/AGENTLOGOFF logged off
============================  =====================================================================
Other events (RINGNOANSWER, CONFIGRELOAD, QUEUESTART …) are skipped.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone

from crm.db import db
from crm.telephony import services

HANGUPS = {"COMPLETECALLER": "normalClearing", "COMPLETEAGENT": "normalClearing", "ABANDON": "cancel",
           "EXITWITHKEY": "exitWithKey", "EXITWITHTIMEOUT": "timeout", "EXITEMPTY": "exitEmpty",
           "TRANSFER": services.TRANSFER}
AGENT_STATES = {"PAUSE": "paused", "PAUSEALL": "paused", "UNPAUSE": "available", "UNPAUSEALL": "available",
                "ADDMEMBER": "available", "AGENTLOGIN": "available", "REMOVEMEMBER": "logged_off",
                "AGENTLOGOFF": "logged_off"}


@dataclass
class ImportResult:
    """Counts of an import, and the refused lines as ``(line number, reason)``."""

    events: int = 0
    duplicates: int = 0
    agent_states: int = 0
    skipped: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)


def agent_name(agent: str) -> str | None:
    """``PJSIP/ivanova`` → ``ivanova``, ``Local/1001@agents`` → ``1001``, ``NONE`` → None."""
    agent = (agent or "").strip()
    if not agent or agent.upper() == "NONE":
        return None
    agent = agent.split("/", 1)[-1]
    return agent.split("@", 1)[0].split(";", 1)[0][:80] or None


def parse_line(line: str) -> tuple[datetime, str, str, str | None, str, list[str]]:
    """``(at, callid, queue, agent, event, data)`` of one line. Raises ValueError for a malformed one."""
    parts = line.rstrip("\r\n").split("|")
    if len(parts) < 5:
        raise ValueError("fewer than 5 fields")
    try:
        at = datetime.fromtimestamp(int(parts[0].split(".")[0]), tz=timezone.utc)
    except (ValueError, OverflowError):
        raise ValueError(f"not a Unix time: {parts[0][:20]!r}") from None
    return at, parts[1].strip(), parts[2].strip(), agent_name(parts[3]), parts[4].strip().upper(), parts[5:]


def line_digest(line: str, event: str) -> str:
    """The de-duplication key of one queue_log line: 40 hex digits of SHA-256 over the line without
    the caller's number. ENTERQUEUE's data fields are ``url|callerid|position`` (Asterisk's
    queue_log documentation), and the caller ID is the only field not already kept in clear beside
    the key (time, call id, queue, agent): a digest over it could be reversed by trying every
    Russian number (10^10), so it is left out. The rest still tells two lines apart (one ENTERQUEUE
    per call and queue)."""
    parts = line.rstrip("\r\n").split("|")
    if event == "ENTERQUEUE" and len(parts) > 6:
        parts[6] = ""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


def import_lines(lines, *, source: str = "queue_log") -> ImportResult:
    """Import ``lines`` (text lines of a queue_log). Each call event goes through
    :func:`crm.telephony.services.ingest` (its own commit: an import stopped half-way keeps what it
    did, and running it again completes it); agents' states are committed at the end."""
    result = ImportResult()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            at, callid, queue, agent, event, data = parse_line(line)
        except ValueError as exc:
            result.refused.append((number, str(exc)))
            continue
        if event in AGENT_STATES:
            if agent:
                services.set_agent_state(agent, AGENT_STATES[event], at)
                result.agent_states += 1
            continue
        if event == "ENTERQUEUE":
            kind, extra = "newCall", {"from_": data[1] if len(data) > 1 else None, "to": queue}
        elif event == "CONNECT":
            kind, extra = "answer", {"user": agent}
        elif event in HANGUPS:
            kind, extra = "hangup", {"cause": HANGUPS[event]}
        else:
            result.skipped += 1
            continue
        if not callid or callid.upper() == "NONE":
            result.refused.append((number, f"{event} without a call id"))
            continue
        event_id = "qlog:" + line_digest(line, event)
        done = services.ingest(services.Event(event_id=event_id, type=kind, call_id=f"{source}:{callid}"[:250], at=at,
                                              direction="in", queue=queue or None, source=source, **extra))
        if done.duplicate:
            result.duplicates += 1
        else:
            result.events += 1
    db.session.commit()
    return result
