"""The webhook's inbox (issue 16 throughput, crm.telephony.inbox): newCall/answer/hangup are accepted into
Redis sealed and built by a real RQ worker; what the fast path does not take goes to the view, which
answers as before; a drain killed mid-event loses nothing; a burst of simultaneous events loses none."""
from __future__ import annotations

import json
import threading

import pytest
import redis
import sqlalchemy as sa

from tests.api.test_api import as_role, assert_error  # noqa: F401  (as_role is a fixture)
from tests.factories import CitizenFactory
from tests.telephony.test_events import PHONE, SECRET, at, ev, fixed_now, pbx, record, sign  # noqa: F401  (fixtures)


def _keys(ctx) -> dict:
    p = ctx.config["CRM_QUEUE_PREFIX"]
    return {"inbox": f"{p}crm:telephony:inbox", "processing": f"{p}crm:telephony:inbox:processing",
            "failed": f"{p}crm:telephony:inbox:failed", "lease": f"{p}crm:telephony:drain"}


def _count_calls() -> int:
    from crm.db import db
    from crm.telephony.models import TelephonyCall

    db.session.expire_all()
    return db.session.execute(sa.select(sa.func.count()).select_from(TelephonyCall)).scalar_one()


def test_an_event_waits_sealed_in_redis_until_the_worker_builds_it(ctx, client, pbx, as_role, run_worker):
    from crm import jobs

    _, sup = as_role("supervisor")
    resp = pbx(ev("newCall", "c-in", 5), drain=False)
    assert resp.status_code == 202
    body = resp.get_json()
    assert body == {"accepted": True, "duplicate": False, "event_id": body["event_id"], "callId": "c-in", "state": None}
    # the answer carries the app's headers though the request never reached Flask's request cycle
    assert resp.headers["Cache-Control"] == "no-store" and resp.headers["X-Content-Type-Options"] == "nosniff"
    conn = jobs.redis_connection()
    k = _keys(ctx)
    assert conn.llen(k["inbox"]) == 1
    assert client.get("/api/v1/telephony/calls/c-in", headers=sup).status_code == 404  # not built yet
    for key in conn.scan_iter(f"{ctx.config['CRM_QUEUE_PREFIX']}*"):  # the caller's number nowhere in clear
        kind = conn.type(key)
        values = ([conn.get(key)] if kind == b"string" else conn.lrange(key, 0, -1) if kind == b"list"
                  else list(conn.hgetall(key).values()) if kind == b"hash" else [])
        assert all(b"9161234567" not in (v or b"") and b"123-45-67" not in (v or b"") for v in values), key
    run_worker(("telephony",))
    assert record(client, sup, "c-in")["state"] == "waiting"
    assert conn.llen(k["inbox"]) == 0 and conn.llen(k["processing"]) == 0
    assert not conn.exists(k["lease"])  # the drain gave its lease back: the next event schedules a new one


def test_what_the_fast_path_does_not_take_the_view_answers_as_before(ctx, client, pbx):
    """Each of these reaches the view with its body intact (the middleware read it first)."""
    base = ev("newCall", "c-v", 5)
    assert_error(pbx({**base, "queue": "a\u0000b"}), 400, "invalid_characters")
    assert_error(pbx({**base, "direction": "sideways"}), 400, "invalid_direction")
    assert_error(pbx({**base, "callId": "x" * 251}), 400, "invalid_callId")
    assert_error(pbx({**base, "at": at(3600)}), 400, "stale_event")
    assert_error(pbx({**base, "type": "ringing"}), 400, "invalid_type")
    assert_error(pbx({k: v for k, v in base.items() if k != "at"}), 400, "invalid_at")
    assert_error(pbx(b"[1, 2]"), 400, "invalid_json")
    assert_error(pbx(b"{not json"), 400, "invalid_json")
    assert _count_calls() == 0


def test_redis_down_is_503_and_nothing_is_half_accepted(ctx, client, pbx, monkeypatch):
    monkeypatch.setitem(ctx.extensions, "crm_redis", redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1))
    assert_error(pbx(ev("newCall", "c-down", 5), drain=False), 503, "queue_unavailable")
    monkeypatch.undo()
    monkeypatch.setitem(ctx.config, "CRM_TELEPHONY_SECRET", SECRET)
    assert _count_calls() == 0


def test_a_drain_killed_mid_event_loses_nothing(ctx, client, pbx, as_role, run_worker):
    """The worker takes an event into the processing list and dies there (its lease runs out): the
    periodic kick schedules a drain, which puts the event back first and builds it, once."""
    from crm import jobs
    from crm.telephony import inbox

    _, sup = as_role("supervisor")
    for e in [ev("newCall", "c-k", 60), ev("answer", "c-k", 50, user=None), ev("hangup", "c-k", 10)]:
        assert pbx(e, drain=False).status_code == 202
    conn = jobs.redis_connection()
    k = _keys(ctx)
    for q in jobs.QUEUES:  # the scheduled drain job is lost with its worker
        jobs.queue(q).empty()
    assert conn.lmove(k["inbox"], k["processing"], "LEFT", "RIGHT") is not None  # taken, then the crash
    assert not inbox.kick()  # the dead worker's lease still holds: nobody else drains yet
    conn.delete(k["lease"])  # … until it expires
    assert inbox.kick()
    run_worker(("telephony",))
    got = record(client, sup, "c-k")
    assert got["state"] == "ended" and got["talk_s"] == pytest.approx(40, abs=0.01)
    assert conn.llen(k["inbox"]) == conn.llen(k["processing"]) == 0
    from crm.db import db
    from crm.telephony.models import TelephonyEvent
    assert db.session.execute(sa.select(sa.func.count()).select_from(TelephonyEvent)).scalar_one() == 3


def test_an_event_that_cannot_be_built_is_set_aside_and_the_rest_go_on(ctx, client, pbx, as_role, run_worker,
                                                                       runner):
    from crm import jobs
    from crm.telephony import inbox

    _, sup = as_role("supervisor")
    conn = jobs.redis_connection()
    k = _keys(ctx)
    conn.rpush(k["inbox"], b"CRMT\x01\x02k1" + b"\x00" * 40)  # sealed under nothing we hold
    assert pbx(ev("newCall", "c-ok", 5)).status_code == 202  # schedules the drain, which meets both
    assert record(client, sup, "c-ok")["state"] == "waiting"
    assert inbox.backlog() == {"waiting": 0, "processing": 0, "failed": 1}
    assert "0 waiting, 0 being built, 1 failed" in runner("status").output
    assert "requeued 1 event(s)" in runner("telephony", "inbox", "--requeue-failed").output
    run_worker(("telephony",))
    assert inbox.backlog()["failed"] == 1  # still not buildable: back on the failed list, nothing lost


def test_the_drain_acts_as_the_pbx_in_the_access_log(ctx, client, pbx, as_role):
    from crm.db import db
    from crm.security.models import AccessLogEntry

    citizen = CitizenFactory(phone=PHONE)
    assert pbx(ev("newCall", "c-actor", 5), source=None).status_code == 202
    rows = db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.citizen_id == citizen.id,
                                                              AccessLogEntry.action == "citizen.search")).scalars().all()
    assert len(rows) == 1 and rows[0].actor == "pbx:default"  # the caller's look-up, on the PBX's behalf


def test_a_burst_of_simultaneous_new_calls_loses_none(ctx, client, monkeypatch, run_worker):
    """200 newCall events posted at once from 50 threads to a live server: 200 accepted, 200 records."""
    from werkzeug.serving import make_server
    import http.client

    monkeypatch.setitem(ctx.config, "CRM_TELEPHONY_SECRET", SECRET)
    server = make_server("127.0.0.1", 0, ctx, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    n, statuses, lock = 200, [], threading.Lock()
    barrier = threading.Barrier(50)

    def post(i: int) -> None:
        body = json.dumps({**ev("newCall", f"burst-{i:03d}", 1), "from": f"+7999000{i:04d}"}).encode()
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
        conn.request("POST", "/api/v1/telephony/events", body=body,
                     headers={"Content-Type": "application/json", "X-CRM-Signature": sign(body)})
        status = conn.getresponse().status
        conn.close()
        with lock:
            statuses.append(status)

    def thread(start: int) -> None:
        barrier.wait()
        for i in range(start, n, 50):
            post(i)
    try:
        threads = [threading.Thread(target=thread, args=(t,)) for t in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.shutdown()
    assert sorted(set(statuses)) == [202] and len(statuses) == n
    run_worker(("telephony",))
    assert _count_calls() == n


def test_the_worker_serves_named_queues_only(ctx, runner):
    out = runner("worker", "--burst", "--queues", "telephony,nonsense")
    assert out.exit_code != 0 and "nonsense" in out.output


def test_a_record_read_right_after_its_event_reads_the_event(ctx, client, pbx, as_role, run_worker):
    """Read-your-writes: a GET sent before the worker ran waits (bounded) until a real RQ worker,
    started 0.3 s later, has built every event answered before it."""
    import time

    _, sup = as_role("supervisor")
    for e in [ev("newCall", "c-ryw", 30), ev("hangup", "c-ryw", 1)]:
        assert pbx(e, drain=False).status_code == 202
    from crm.db import db
    db.session.commit()  # the test's own transaction ends (SQLite: its write lock)
    got = {}

    def read():
        resp = client.get("/api/v1/telephony/calls/c-ryw", headers=sup)
        got["status"], got["body"], got["at"] = resp.status_code, resp.get_json(), time.monotonic()

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.3)
    started = time.monotonic()
    run_worker(("telephony",))
    reader.join(10)
    assert got["status"] == 200 and got["at"] >= started  # answered after the worker began, not before
    assert got["body"]["state"] == "abandoned" and got["body"]["abandoned_after_s"] == pytest.approx(29, abs=0.01)


def test_without_a_worker_the_read_waits_two_seconds_at_most_and_says_why(ctx, client, pbx, as_role, caplog):
    import logging

    _, sup = as_role("supervisor")
    assert pbx(ev("newCall", "c-nowork", 5), drain=False).status_code == 202
    caplog.set_level(logging.WARNING, logger="crm.telephony.inbox")
    assert client.get("/api/v1/telephony/calls/c-nowork", headers=sup).status_code == 404
    assert "is a worker serving the telephony queue" in caplog.text


def test_a_form_encoded_event_is_told_to_be_json_and_an_unknown_source_is_named(ctx, client, pbx):
    """curl --data sends application/x-www-form-urlencoded: the 401 (unsigned, as the policy wants
    of anything unchecked) names the Content-Type; a source that is not configured is named too."""
    e = ev("newCall", "c-ct", 5)
    raw = json.dumps(e).encode()
    resp = client.post("/api/v1/telephony/events", data=raw, content_type="application/x-www-form-urlencoded",
                       headers={"X-CRM-Signature": sign(raw)})
    assert_error(resp, 401, "invalid_signature")
    assert "application/json" in resp.get_json()["error"]["message"]
    resp = pbx(e, source="asterisk-9")
    assert_error(resp, 401, "invalid_signature")
    assert "X-CRM-Source" in resp.get_json()["error"]["message"]
    assert _count_calls() == 0


def test_a_new_instance_and_an_old_one_get_a_webhook_secret(tmp_path):
    """`make run` answers the PBX (and `crm telephony simulate --url`) out of the box: `crm init` writes
    a generated secret into a new config; `crm demo-data` appends one to an older config without it."""
    from types import SimpleNamespace

    from crm import config

    def load(path):
        ns: dict = {}
        exec(path.read_text(), ns)  # the config file is Python, as Flask's from_pyfile reads it
        return ns

    first, second = config.create_instance(tmp_path / "a"), config.create_instance(tmp_path / "b")
    secrets_ = [load(first)["CRM_TELEPHONY_SECRET"], load(second)["CRM_TELEPHONY_SECRET"]]
    assert all(len(x) == 48 for x in secrets_) and secrets_[0] != secrets_[1]
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.py").write_text("SECRET_KEY = 'x'\n")
    app = SimpleNamespace(instance_path=str(old), config={"CRM_TELEPHONY_SECRET": None})
    assert config.add_telephony_secret(app) == old / "config.py"
    assert load(old / "config.py")["CRM_TELEPHONY_SECRET"] == app.config["CRM_TELEPHONY_SECRET"]
