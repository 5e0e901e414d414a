"""The one-time self-service code is sent by a background job, for a known and an unknown number alike
(re-audit 13.1: sending it inside the request made a known number's answer measurably slower).

The request takes one path either way: a grant, the code sealed under the grant's own data key and
put in Redis, one delivery job enqueued. The job (run here by a real RQ worker in burst mode) sends
the SMS of a real grant, nothing for a decoy, and leaves no copy of the code behind. Wall time is
not asserted (bench/selfservice.py prints it)."""
from __future__ import annotations

import re
import types

import pytest
from rq.registry import ScheduledJobRegistry

from crm import jobs
from crm.db import db
from tests.clients import SharedContextClient as Client
from tests.factories import CitizenFactory

KNOWN, UNKNOWN = "8 912 808-41-52", "8 912 808-41-59"
CANARY = "583920"  # the code every request of these tests draws


@pytest.fixture()
def known(ctx):
    return CitizenFactory(full_name="Доставкина Ия", phone=KNOWN)


@pytest.fixture()
def canary_code(monkeypatch):
    """Every code drawn is :data:`CANARY`, so the raw Redis contents can be searched for it."""
    from crm.consent import selfservice

    monkeypatch.setattr(selfservice, "secrets", types.SimpleNamespace(
        randbelow=lambda n: int(CANARY), token_urlsafe=selfservice.secrets.token_urlsafe))
    return CANARY


def _queued() -> list:
    q = jobs.queue("default")
    return [q.fetch_job(i) for i in q.job_ids]


def _raw_redis() -> bytes:
    """Every key and value of the Redis database the test run uses, as raw bytes (strings, hashes,
    lists, sets, sorted sets, streams)."""
    conn = jobs.redis_connection()
    out = []
    for key in conn.scan_iter(count=1000):
        kind = conn.type(key)
        out.append(key)
        if kind == b"string":
            out.append(conn.get(key) or b"")
        elif kind == b"hash":
            for k, v in conn.hgetall(key).items():
                out += [k, v]
        elif kind == b"list":
            out += conn.lrange(key, 0, -1)
        elif kind == b"set":
            out += list(conn.smembers(key))
        elif kind == b"zset":
            out += [m for m, _ in conn.zrange(key, 0, -1, withscores=True)]
        elif kind == b"stream":
            out += [repr(e).encode() for e in conn.xrange(key)]
    return b"\n".join(out)


def _pending(grant_id: str) -> bytes | None:
    from crm.consent import selfservice

    return jobs.redis_connection().get(selfservice._pending_key(grant_id))


def test_known_and_unknown_numbers_enqueue_the_same_job_and_nothing_is_sent_in_the_request(
        ctx, known, sms_inbox, canary_code, recordings):
    from crm.consent import selfservice

    answers = []
    for phone in (KNOWN, UNKNOWN):
        visitor = Client(ctx)
        resp = visitor.post("/my", data={"phone": phone})
        answers.append((resp.status_code, resp.headers.get("Location"), resp.get_data()))
    assert answers[0] == answers[1] and answers[0][0] == 302

    assert sms_inbox == [], "no SMS is sent inside the request"
    queued = _queued()
    assert [j.func_name for j in queued] == [selfservice.DELIVER_JOB] * 2
    assert [len(j.args) for j in queued] == [1, 1]
    assert all(j.retries_left and j.retries_left > 0 for j in queued), "RQ's Retry is declared"
    # each grant's code waits sealed in Redis, the same size for both
    sealed = [_pending(j.args[0]) for j in queued]
    assert all(sealed) and len(sealed[0]) == len(sealed[1])


def test_redis_holds_neither_the_code_nor_the_phone_in_clear(ctx, known, sms_inbox, canary_code, recordings):
    from crm.consent import selfservice

    selfservice.request_code(KNOWN)
    selfservice.request_code(UNKNOWN)
    raw = _raw_redis()
    assert _queued(), "the delivery jobs are waiting in Redis"
    digits = {re.sub(r"\D", "", p) for p in (KNOWN, UNKNOWN)}
    for canary in (CANARY.encode(), *(d.encode() for d in digits), *(("7" + d[1:]).encode() for d in digits),
                   *(d[1:].encode() for d in digits), "Доставкина".encode()):
        assert canary not in raw, canary


def test_a_real_worker_delivers_the_code_and_leaves_no_copy(ctx, known, sms_inbox, canary_code, run_worker):
    from crm.consent import selfservice, sms
    from crm.security import keystore

    real = selfservice.request_code(KNOWN)
    decoy = selfservice.request_code(UNKNOWN)
    assert keystore.find_by_owner(real) and keystore.find_by_owner(decoy)
    run_worker()
    assert [m.to for m in sms_inbox] == ["+79128084152"] and CANARY in sms_inbox[0].body
    assert [m.kind for m in sms.outbox(citizen_id=known.id)] == ["code"]
    assert CANARY not in sms.outbox(citizen_id=known.id)[0].body
    # sent (or, for the decoy, dropped): the sealed code and its data key are gone
    for grant_id in (real, decoy):
        assert _pending(grant_id) is None
        assert keystore.find_by_owner(grant_id) is None
    assert CANARY.encode() not in _raw_redis()
    # and the code works
    assert selfservice.verify_code(real, CANARY) == [known.id]


def test_a_failed_delivery_is_retried_by_rq(ctx, known, sms_inbox, canary_code, run_worker, monkeypatch):
    from crm.consent import selfservice, sms

    calls = []

    class Flaky(sms.SmsGateway):
        def deliver(self, message) -> None:
            calls.append(message)
            if len(calls) == 1:
                raise ConnectionError("gateway down")
            sms_inbox.append(message)

    monkeypatch.setattr(sms, "gateway", lambda app=None: Flaky())
    grant_id = selfservice.request_code(KNOWN)
    run_worker()
    assert len(calls) == 1 and sms_inbox == []
    q = jobs.queue("default")
    scheduled = ScheduledJobRegistry(queue=q)
    [job_id] = scheduled.get_job_ids()  # RQ's Retry put it back, to run after its interval
    assert _pending(grant_id) is not None, "the sealed code is kept for the retry"
    # the interval has passed (what RQ's scheduler does then): run it again
    scheduled.remove(job_id)
    q.enqueue_job(q.fetch_job(job_id))
    db.session.commit()
    run_worker()
    assert len(calls) == 2 and [m.to for m in sms_inbox] == ["+79128084152"]
    assert _pending(grant_id) is None


def test_a_delivery_that_finally_fails_leaves_no_copy_of_the_code(ctx, known, canary_code, run_worker, monkeypatch):
    """When the last retry fails too, the code will never be sent: the sealed code and the grant's
    data key go with the failed job, not when the Redis key expires — and the key never (issue 13)."""
    from crm.consent import selfservice, sms
    from crm.security import keystore

    calls = []

    class Down(sms.SmsGateway):
        def deliver(self, message) -> None:
            calls.append(message)
            raise ConnectionError("gateway down")

    monkeypatch.setattr(sms, "gateway", lambda app=None: Down())
    grant_id = selfservice.request_code(KNOWN)
    q = jobs.queue("default")
    scheduled = ScheduledJobRegistry(queue=q)
    for attempt in range(1, 7):  # the first run and RQ's 5 retries
        run_worker()
        assert len(calls) == attempt
        if attempt < 6:
            assert _pending(grant_id) is not None and keystore.find_by_owner(grant_id) is not None
            [job_id] = scheduled.get_job_ids()
            scheduled.remove(job_id)  # its interval has passed: run it again
            q.enqueue_job(q.fetch_job(job_id))
            db.session.commit()
    assert scheduled.get_job_ids() == [] and q.failed_job_registry.get_job_ids() == [job_id]
    assert _pending(grant_id) is None
    assert keystore.find_by_owner(grant_id) is None
    assert CANARY.encode() not in _raw_redis()
