"""A simulated hour of a hotline's call centre, as the PBX's events: for demos, tests and load.

Calls arrive at random (Poisson, ``calls`` an hour on average) with a burst three times as dense in
minutes 20–30 (a pipe bursts: everyone calls); ``agents`` operators answer the longest-waiting call
first. Each caller waits up to a random patience (exponential, mean 90 s; one in twelve hangs up within
5 s: a misdial, a short abandon) and talks a random time (exponential, mean 180 s, at least 20 s); one
answered call in fifteen is transferred to a second operator. The callers' numbers are
+7 997 000-00-00 … +7 997 000-99-99 (:func:`fictional_number`), valid Russian mobile numbers for
``phonenumbers`` (so the whole path — matching, callbacks — runs) in a block that no operator holds:
see :data:`FICTIONAL_PREFIX` for why this block and what that claim rests on. The same seed gives the
same hour.
"""
from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass
class SimEvent:
    """One event as the webhook takes it, ``at`` aware UTC."""

    event_id: str
    type: str
    call_id: str
    at: datetime
    from_: str
    to: str = "+74950000000"
    queue: str = "hotline"
    user: str | None = None
    cause: str | None = None
    direction: str = "in"

    def as_json(self, at: datetime | None = None) -> dict:
        """The webhook's JSON (``at``: another time to stamp it with, e.g. the moment it is sent)."""
        body = {"event_id": self.event_id, "type": self.type, "callId": self.call_id, "from": self.from_,
                "to": self.to, "direction": "in", "queue": self.queue, "at": (at or self.at).isoformat()}
        if self.user:
            body["user"] = self.user
        if self.cause:
            body["cause"] = self.cause
        return body


#: The simulator's callers: +7 997 000-00-00 … +7 997 000-99-99.
#:
#: Russia's numbering plan (Приказ Мининформсвязи № 142 of 17.11.2006, «Российская система и план
#: нумерации») reserves no range for fiction, films or tests — there is no counterpart of Ofcom's
#: 07700 900xxx or the NANP's 555-01xx. The block used before, +7 999 000-xx-xx, is *assigned*: the
#: Rossvyaz register of DEF codes (DEF-9xx) lists 999 0000000–0044999 for ООО «Скартел» (Yota), Moscow, in
#: its copies of February 2023 and April 2026, so those are real subscribers' numbers. The block here is
#: the best the register offers: DEF 997 0000000–0999999 is allocated to no operator in either copy
#: (997 holds only two blocks of 100 numbers, 7777700–7777799 and 9999900–9999999), and
#: ``phonenumbers``' carrier data names no operator for it (tests/telephony: test_simulated_callers_are_
#: fictional checks that). "Unallocated" is not "reserved": Rossvyaz may allocate it later, so check the
#: current DEF-9xx register before relying on it, and never dial or text these numbers.
FICTIONAL_PREFIX = "+7997000"


def fictional_number(n: int) -> str:
    """The ``n``-th fictional caller (0 … 9999): ``+7997000NNNN``."""
    return f"{FICTIONAL_PREFIX}{n % 10000:04d}"


def hour(start: datetime, *, calls: int = 120, agents: int = 5, seed: int = 1, prefix: str = "sim",
         names: list[str] | None = None) -> list[SimEvent]:
    """The events of one simulated hour from ``start``, in time order (see the module's docstring).
    ``names``: the operators' user names (the webhook keeps an answer's ``user`` only when it is a
    staff account); default ``operator1`` … ``operator<agents>``."""
    rnd = random.Random(seed)
    arrivals, t = [], 0.0
    base = calls / 3600.0
    while t < 3600:
        rate = base * (3 if 1200 <= t < 1800 else 1)
        t += rnd.expovariate(rate)
        if t < 3600:
            arrivals.append(t)
    names = list(names or [f"operator{i + 1}" for i in range(agents)])
    free_at = {n: 0.0 for n in names}
    events: list[SimEvent] = []
    at = lambda s: start + timedelta(seconds=round(s, 3))  # noqa: E731
    for i, arrive in enumerate(arrivals):
        call_id = f"{prefix}-{seed}-{i:05d}"
        number = fictional_number(rnd.randrange(10000))
        patience = rnd.uniform(0.5, 4.5) if rnd.random() < 1 / 12 else rnd.expovariate(1 / 90)
        talk = max(20.0, rnd.expovariate(1 / 180))
        ev = lambda kind, s, **kw: SimEvent(f"{call_id}-{kind}-{len(events)}", kind, call_id, at(s), number, **kw)  # noqa: E731
        events.append(ev("newCall", arrive))
        agent = min(names, key=lambda n: (max(free_at[n], arrive), n))
        answer = max(free_at[agent], arrive)
        if answer - arrive > patience:
            events.append(ev("hangup", arrive + patience, cause="cancel"))
            continue
        events.append(ev("answer", answer, user=agent))
        end = answer + talk
        if rnd.random() < 1 / 15 and len(names) > 1:
            second = min((n for n in names if n != agent), key=lambda n: (free_at[n], n))
            handover = answer + talk / 2
            events.append(ev("hangup", handover, cause="forwarded"))
            events.append(ev("answer", handover + 1, user=second))
            free_at[agent] = handover
            free_at[second] = max(free_at[second], end + 1)
            events.append(ev("hangup", end + 1, cause="normalClearing"))
        else:
            free_at[agent] = end
            events.append(ev("hangup", end, cause="normalClearing"))
    order = {"newCall": 0, "answer": 1, "hangup": 2}
    return sorted(events, key=lambda e: (e.at, order[e.type], e.event_id))


def merge(streams: list[list[SimEvent]]) -> list[SimEvent]:
    """Several time-ordered streams as one."""
    return list(heapq.merge(*streams, key=lambda e: e.at))
