"""Sampling calls into the supervisors' review queues: the rules, the QA-consent exclusion,
determinism for a seed, idempotency, the per-supervisor queues."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from tests.qa.test_qa_world import qa_env  # noqa: F401
from tests.factories import RUDE_SEGMENTS, AppealFactory, CallFactory, CitizenFactory

WEEK_DAY = date(2026, 3, 4)  # a Wednesday; ISO week 2026-W10 runs Mon 2 – Sun 8 March (Moscow)
IN_WEEK = datetime(2026, 3, 3, 9, 0, tzinfo=timezone.utc)


def at(hours: float) -> datetime:
    return IN_WEEK + timedelta(hours=hours)


def queued() -> dict[str, object]:
    from crm.db import db
    from crm.qa.models import QueueItem

    db.session.expire_all()
    return {it.call_id: it for it in db.session.execute(db.select(QueueItem)).scalars()}


def only_rules(*kinds: str, n: int = 2) -> None:
    """Keep the default rules of ``kinds`` active (weekly), the others off; the random rule takes ``n``."""
    from crm.qa import services as qa

    for r in qa.ensure_rules():
        qa.update_rule(r.id, active=r.kind in kinds, period="week", n=n if r.kind == "random_per_operator" else None,
                       codes=(r.params or {}).get("codes"))


@pytest.fixture()
def people(make_user):
    ops = [make_user("operator"), make_user("operator")]
    sups = [make_user("supervisor"), make_user("supervisor")]
    return ops, sups


def test_random_rule_takes_n_per_operator_deterministically_and_only_once(ctx, people):
    from crm.db import db
    from crm.qa import services as qa
    from crm.qa.models import QueueItem

    (a, b), _ = people
    only_rules("random_per_operator", n=2)
    calls_a = [CallFactory(operator=a, citizen=CitizenFactory(qa_consent=True), created_at=at(i)).id for i in range(5)]
    calls_b = [CallFactory(operator=b, citizen=CitizenFactory(qa_consent=True), created_at=at(i)).id for i in range(3)]
    last_week = CallFactory(operator=a, citizen=CitizenFactory(qa_consent=True), created_at=IN_WEEK - timedelta(days=7)).id

    assert qa.run_sampling(WEEK_DAY, seed=7) == {"random_per_operator": 4}
    first = queued()
    assert len(set(first) & set(calls_a)) == 2 and len(set(first) & set(calls_b)) == 2
    assert last_week not in first
    assert {it.period_key for it in first.values()} == {"2026-W10"}
    assert all(it.reasons == ["random_per_operator"] for it in first.values())

    assert qa.run_sampling(WEEK_DAY, seed=7) == {}  # idempotent: the same period adds nothing
    assert queued().keys() == first.keys()

    db.session.execute(db.delete(QueueItem))
    db.session.commit()
    assert qa.run_sampling(WEEK_DAY, seed=7) == {"random_per_operator": 4}
    assert queued().keys() == first.keys()  # the same seed picks the same calls

    picks = set()
    for seed in range(1, 9):
        db.session.execute(db.delete(QueueItem))
        db.session.commit()
        qa.run_sampling(WEEK_DAY, seed=seed)
        picks.add(frozenset(queued()))
    assert len(picks) > 1  # another seed, another pick


def test_new_calls_top_the_period_up_to_n(ctx, people):
    from crm.qa import services as qa

    (a, _), _ = people
    only_rules("random_per_operator", n=3)
    CallFactory(operator=a, citizen=CitizenFactory(qa_consent=True), created_at=at(1))
    assert qa.run_sampling(WEEK_DAY) == {"random_per_operator": 1}
    for i in range(4):
        CallFactory(operator=a, citizen=CitizenFactory(qa_consent=True), created_at=at(2 + i))
    assert qa.run_sampling(WEEK_DAY) == {"random_per_operator": 2}  # 3 in all
    assert qa.run_sampling(WEEK_DAY) == {}


def test_calls_without_the_citizens_qa_consent_never_enter_the_queue(ctx, people):
    from crm.consent import services as consent
    from crm.qa import services as qa

    (a, _), _ = people
    only_rules("random_per_operator", "complaint", "breached_appeal", "checks_failed", n=10)
    never_asked = CitizenFactory()
    refused = CitizenFactory(qa_consent=False)
    withdrawn = CitizenFactory(qa_consent=True)
    for ev in consent.for_citizen(withdrawn.id):
        consent.withdraw(ev)
    excluded = []
    for citizen in (never_asked, refused, withdrawn):
        # a complaint, a rude call (flagged by the checks) and a plain call: every rule would take them
        complaint = AppealFactory(citizen=citizen, operator=a, category="complaint")
        excluded.append(CallFactory(operator=a, appeal=complaint, created_at=at(1)).id)
        excluded.append(CallFactory(operator=a, citizen=citizen, segments=RUDE_SEGMENTS, created_at=at(2)).id)
        excluded.append(CallFactory(operator=a, citizen=citizen, created_at=at(3)).id)
    excluded.append(CallFactory(operator=a, created_at=at(4)).id)  # no citizen at all: no consent either
    allowed = CallFactory(operator=a, citizen=CitizenFactory(qa_consent=True), created_at=at(5)).id

    qa.run_sampling(WEEK_DAY)
    assert set(queued()) == {allowed}
    assert qa.qa_allowed(withdrawn.id) is False and qa.qa_allowed(None) is False


def test_complaints_breaches_and_flagged_calls_are_all_taken_then_random_tops_up(ctx, people):
    from crm.db import db
    from crm.qa import services as qa

    (a, b), _ = people
    only_rules("random_per_operator", "complaint", "breached_appeal", "checks_failed", n=1)
    complaint = CallFactory(operator=a, appeal=AppealFactory(citizen=CitizenFactory(qa_consent=True), operator=a,
                                                            category="complaint"), created_at=at(1)).id
    late = AppealFactory(citizen=CitizenFactory(qa_consent=True), operator=a, category="routine")
    late.resolve_by = datetime.now(timezone.utc) - timedelta(hours=1)
    db.session.commit()
    breached = CallFactory(operator=a, appeal=late, created_at=at(2)).id
    rude = CallFactory(operator=b, citizen=CitizenFactory(qa_consent=True), segments=RUDE_SEGMENTS, created_at=at(3)).id
    plain_a = [CallFactory(operator=a, citizen=CitizenFactory(qa_consent=True), created_at=at(4 + i)).id for i in range(3)]
    plain_b = [CallFactory(operator=b, citizen=CitizenFactory(qa_consent=True), created_at=at(4 + i)).id for i in range(3)]

    added = qa.run_sampling(WEEK_DAY)
    assert added == {"complaint": 1, "breached_appeal": 1, "checks_failed": 1, "random_per_operator": 2}
    items = queued()
    assert items[complaint].reasons == ["complaint"] and items[breached].reasons == ["breached_appeal"]
    assert items[rude].reasons == ["checks_failed"]
    # the random rule counts only its own picks: one more call for each operator
    assert len(set(items) & set(plain_a)) == 1 and len(set(items) & set(plain_b)) == 1


def test_flagging_checks_are_configurable(ctx, people):
    from crm.qa import services as qa

    (a, _), _ = people
    rude = CallFactory(operator=a, citizen=CitizenFactory(qa_consent=True), segments=RUDE_SEGMENTS, created_at=at(1)).id
    rule = next(r for r in qa.ensure_rules() if r.kind == "checks_failed")
    only_rules("checks_failed")
    qa.update_rule(rule.id, active=True, period="week", codes=["speech_rate"])  # the rude call is not judged on it
    assert qa.run_sampling(WEEK_DAY) == {}
    qa.update_rule(rule.id, active=True, period="week", codes=["forbidden_phrases"])
    assert qa.run_sampling(WEEK_DAY) == {"checks_failed": 1} and rude in queued()
    with pytest.raises(qa.EvaluationError):
        qa.update_rule(rule.id, active=True, period="week", codes=["no_such_check"])


def test_each_supervisor_gets_a_queue_of_their_own(ctx, people, make_user):
    from crm.qa import services as qa

    (a, b), (s1, s2) = people
    only_rules("random_per_operator", n=3)
    for op in (a, b):
        for i in range(3):
            CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True), created_at=at(i))
    qa.run_sampling(WEEK_DAY)
    q1, q2 = qa.queue_for(s1), qa.queue_for(s2)
    assert len(q1) == 3 and len(q2) == 3  # by load, lowest id first on a tie
    assert not {i.call_id for i in q1} & {i.call_id for i in q2}
    assert {i.assignee_id for i in q1} == {s1.id}
    admin = make_user("admin")
    assert len(qa.queue_for(admin)) == 6

    ids = [i.call_id for i in q1]
    assert qa.next_in_queue(s1) == ids[0]
    assert qa.next_in_queue(s1, ids[0]) == ids[1]
    assert qa.next_in_queue(s1, ids[-1]) == ids[0]  # wraps round


def test_evaluating_a_queued_call_takes_it_off_the_queue(ctx, people):
    from crm.calls.models import Call
    from crm.db import db
    from crm.qa import services as qa

    (a, _), (s1, _) = people
    only_rules("random_per_operator", n=4)
    for i in range(4):
        CallFactory(operator=a, citizen=CitizenFactory(qa_consent=True), created_at=at(i))
    qa.run_sampling(WEEK_DAY)
    first, second = [i.call_id for i in qa.queue_for(s1)]  # two each for the two supervisors
    card = qa.ensure_default_scorecard()
    ev = qa.evaluate(db.session.get(Call, first), evaluator=s1, answers={c["code"]: "yes" for c in card.criteria})
    item = queued()[first]
    assert item.status == "done" and item.evaluation_id == ev.id and item.done_at is not None
    assert [i.call_id for i in qa.queue_for(s1)] == [second]


def test_a_withdrawal_takes_a_queued_call_out_at_once(ctx, people):
    from crm.consent import services as consent
    from crm.qa import services as qa

    (a, _), (s1, s2) = people
    only_rules("random_per_operator", n=5)
    citizen = CitizenFactory(qa_consent=True)
    call_id = CallFactory(operator=a, citizen=citizen, created_at=at(1)).id
    qa.run_sampling(WEEK_DAY)
    owner = s1 if qa.queue_for(s1) else s2
    assert [i.call_id for i in qa.queue_for(owner)] == [call_id]
    for ev in consent.for_citizen(citizen.id):
        consent.withdraw(ev)
    assert qa.queue_for(owner) == []
    assert queued()[call_id].status == "excluded"
    assert qa.run_sampling(WEEK_DAY) == {}


@pytest.mark.parametrize("kind, utc, key", [
    ("week", datetime(2026, 3, 8, 20, 30, tzinfo=timezone.utc), "2026-W10"),  # Sun 23:30 in Moscow
    ("week", datetime(2026, 3, 8, 21, 30, tzinfo=timezone.utc), "2026-W11"),  # Mon 00:30 in Moscow
    ("day", datetime(2026, 3, 2, 22, 0, tzinfo=timezone.utc), "2026-03-03"),
    ("month", datetime(2026, 2, 28, 21, 0, tzinfo=timezone.utc), "2026-03"),
])
def test_periods_are_days_weeks_and_months_of_moscow_time(ctx, kind, utc, key):
    from zoneinfo import ZoneInfo

    from crm.qa import services as qa

    local_day = utc.astimezone(ZoneInfo("Europe/Moscow")).date()
    got, start, end = qa.period_of(kind, local_day)
    assert got == key and start <= utc < end


def test_the_sampling_job_is_safe_to_run_twice(ctx, people):
    from crm.db import db
    from crm.qa import jobs as qa_jobs

    (a, _), _ = people
    only_rules("random_per_operator", n=2)
    for i in range(3):
        CallFactory(operator=a, citizen=CitizenFactory(qa_consent=True), created_at=at(i))
    db.session.remove()  # SQLite: the job's session needs the write lock
    assert qa_jobs.run_sampling(WEEK_DAY.isoformat(), seed=3) == {"random_per_operator": 2}
    assert qa_jobs.run_sampling(WEEK_DAY.isoformat(), seed=3) == {}
    assert len(queued()) == 2


def test_an_empty_queue_counts_the_transcribed_calls_not_queued_beside_the_button(ctx, people, login):
    """Issue: the queue stayed empty after new calls until «Сформировать выборку» was pressed — the
    periodic run (CRM_QA_SAMPLING_EVERY_S) had not come yet. The empty queue now says how many
    transcribed calls of the period are not in it, with the button; calls without the QA consent,
    not yet transcribed or already queued are not counted."""
    import re

    from crm.qa import services as qa

    (a, _), (sup, _) = people
    only_rules("random_per_operator", n=2)
    web = login(sup)
    page = web.get("/qa/queue").get_data(as_text=True)
    assert "В очереди нет звонков." in page and 'id="unqueued"' not in page  # nothing to sample: no line
    for _i in range(4):
        CallFactory(operator=a, citizen=CitizenFactory(qa_consent=True))
    CallFactory(operator=a, citizen=CitizenFactory(qa_consent=False))  # never sampled: not counted
    CallFactory(operator=a, citizen=CitizenFactory(qa_consent=True), transcribed=False)  # still queued for Whisper
    assert qa.unqueued_count() == 4
    page = web.get("/qa/queue").get_data(as_text=True)
    line = re.search(r'<form[^>]*id="unqueued".*?</form>', page, re.S).group(0)
    assert "которых нет в очереди: 4." in line and 'id="sample-now"' in line and "раз в 60 мин" in line
    web.post("/qa/queue/sample", data={})
    assert qa.unqueued_count() == 2  # the random rule took 2 of the operator's 4; the others stay out
    page = web.get("/qa/queue").get_data(as_text=True)
    assert 'id="start-review"' in page and 'id="unqueued"' not in page
