"""The JSON API, part 4: ``GET /reports/kpi`` — shape, Moscow-day boundaries, SLA compliance, repeat
rate, QA scores, bad dates."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from tests.api.test_api import as_role  # noqa: F401  (as_role is a fixture)
from tests.factories import AppealFactory, CitizenFactory

UTC = timezone.utc
FAR = datetime(2100, 1, 1, tzinfo=UTC)
ALL_YES = {"greeting": "yes", "problem_identified": "yes", "correct_information": "yes", "politeness": "yes",
           "closing": "yes"}


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture()
def march(ctx, make_user):
    """Appeals, calls and evaluations around Moscow day 2026-03-02 (UTC+3): the day runs from
    2026-03-01 21:00 to 2026-03-02 21:00 UTC."""
    from crm.calls.models import Call
    from crm.db import db
    from crm.qa import services as qa

    op = make_user("operator")
    sup = make_user("supervisor")
    citizen = CitizenFactory(full_name="Орлов Олег", phone="89031112233", address="г. Тула, ул. Мира, 3")

    def appeal(category, topic, created, *, status="received", resolve_by=FAR, resolved=None, repeat_of=None):
        a = AppealFactory(citizen=citizen, category=category, topic=topic, description="Описание обращения",
                          operator_id=op.id)
        a.created_at, a.status, a.resolve_by, a.resolved_at = created, status, resolve_by, resolved
        a.repeat_of_id = repeat_of.id if repeat_of else None
        db.session.commit()
        return a

    appeal("emergency", "heating", utc(2026, 3, 1, 21, 30), resolve_by=utc(2026, 3, 2, 21, 30))  # open, overdue
    a2 = appeal("routine", "hot_water", utc(2026, 3, 2, 10), status="resolved", resolve_by=utc(2026, 3, 10),
                resolved=utc(2026, 3, 3, 10))  # on time, 24 h
    appeal("routine", "hot_water", utc(2026, 3, 2, 12), repeat_of=a2)  # open, not due: on time; a repeat
    appeal("complaint", "management", utc(2026, 3, 2, 13), status="rejected")  # left out of SLA
    appeal("consultation", "billing", utc(2026, 3, 2, 20, 59), status="consulted", resolve_by=utc(2026, 3, 3),
           resolved=utc(2026, 3, 3, 12))  # 23:59 Moscow time; resolved late
    appeal("routine", "lift", utc(2026, 3, 2, 21))  # 00:00 on 03-03 in Moscow: next day
    appeal("routine", "gas", utc(2026, 3, 1, 20, 59))  # 23:59 on 03-01 in Moscow: day before

    qa_citizen = CitizenFactory(full_name="Зайцева Анна", phone="89031112244", qa_consent=True)

    def call(created, duration, score_answers=None, evaluated=None):
        # the citizen consents to quality control: QA scores only such calls
        c = Call(status="done", storage_key="k", size_bytes=1, duration_s=duration, created_at=created,
                 operator_id=op.id, citizen_id=qa_citizen.id)
        db.session.add(c)
        db.session.commit()
        if score_answers:
            ev = qa.evaluate(c, evaluator=sup, answers=score_answers)
            ev.created_at = evaluated
            db.session.commit()
        return c

    call(utc(2026, 3, 2, 9), 60.0, ALL_YES, utc(2026, 3, 2, 15))  # 100
    call(utc(2026, 3, 2, 11), 90.0, {**ALL_YES, "closing": "no"}, utc(2026, 3, 2, 16))  # 85
    call(utc(2026, 3, 4, 9), 600.0, {**ALL_YES, "correct_information": "no"}, utc(2026, 3, 4, 10))  # 0, outside


def test_kpi_for_a_moscow_day(client, as_role, march):
    _, headers = as_role("supervisor")
    resp = client.get("/api/v1/reports/kpi?from=2026-03-02&to=2026-03-02", headers=headers)
    assert resp.status_code == 200, resp.get_json()
    k = resp.get_json()
    assert k["from"] == k["to"] == "2026-03-02" and k["timezone"] == "Europe/Moscow"
    assert k["appeals_total"] == 5
    assert k["by_category"] == {"emergency": 1, "routine": 2, "consultation": 1, "complaint": 1}
    assert k["by_topic"]["hot_water"] == 2 and k["by_topic"]["heating"] == 1 and k["by_topic"]["lift"] == 0
    assert sum(k["by_topic"].values()) == 5
    assert k["repeats"] == 1 and k["repeat_rate"] == 0.2
    assert k["sla_compliance"] == 0.5  # 2 of 4: rejected left out, one overdue open, one late
    assert k["avg_time_to_resolve_h"] == pytest.approx((24 + 15 + 1 / 60) / 2, abs=0.01)
    assert k["csat_avg"] is None
    assert k["calls_total"] == 2 and k["avg_call_duration_s"] == 75.0
    assert k["evaluations_total"] == 2 and k["qa_score_avg"] == 92.5


def test_kpi_over_several_days(client, as_role, march):
    _, headers = as_role("admin")
    k = client.get("/api/v1/reports/kpi?from=2026-03-01&to=2026-03-04", headers=headers).get_json()
    assert k["appeals_total"] == 7 and k["calls_total"] == 3
    assert k["qa_score_avg"] == round((100 + 85 + 0) / 3, 1)


def test_kpi_of_an_empty_period(client, as_role):
    _, headers = as_role("supervisor")
    k = client.get("/api/v1/reports/kpi?from=2020-01-01&to=2020-01-31", headers=headers).get_json()
    assert k["appeals_total"] == 0 and set(k["by_category"].values()) == {0}
    assert k["repeat_rate"] is None and k["sla_compliance"] is None and k["csat_avg"] is None
    assert k["qa_score_avg"] is None and k["avg_time_to_resolve_h"] is None and k["calls_total"] == 0


def test_kpi_defaults_to_the_last_30_days(client, as_role):
    _, headers = as_role("supervisor")
    k = client.get("/api/v1/reports/kpi", headers=headers).get_json()
    today = datetime.now(ZoneInfo("Europe/Moscow")).date()
    assert k["to"] == today.isoformat()
    assert date.fromisoformat(k["to"]) - date.fromisoformat(k["from"]) == timedelta(days=29)


@pytest.mark.parametrize("query, code", [
    ("from=2026-13-01&to=2026-12-31", "invalid_from"),
    ("from=01.03.2026&to=2026-03-31", "invalid_from"),
    ("from=2026-03-01&to=tomorrow", "invalid_to"),
    ("from=20260301&to=2026-03-31", "invalid_from"),
    ("from=2026-03-31&to=2026-03-01", "invalid_from"),
])
def test_kpi_bad_dates_are_400(client, as_role, query, code):
    _, headers = as_role("supervisor")
    resp = client.get(f"/api/v1/reports/kpi?{query}", headers=headers)
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == code
    assert resp.get_json()["error"]["message"]
