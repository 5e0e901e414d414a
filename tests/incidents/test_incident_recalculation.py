"""ПП РФ № 354 Appendix 1: an outage longer than the permitted interruption — at a time, or in total in
the month on the same houses — is flagged for recalculation of the bill (0.15 % per hour beyond)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

T0 = datetime(2026, 11, 10, 7, 0, tzinfo=timezone.utc)  # 10:00 Moscow time


@pytest.fixture()
def sup(ctx, make_user):
    from crm.buildings.services import import_csv

    import_csv("address\n\"г. Москва, ул. Ленина, д. 5\"\n\"г. Москва, ул. Ленина, д. 7\"\n".encode())
    return make_user("supervisor")


def _outage(sup, topic, start, hours, address="Ленина 5"):
    from crm.incidents import services as incidents

    incident = incidents.create(sup, addresses=[address], topic=topic, text="Отключение", starts_at=start)
    if hours is not None:
        incidents.close(sup, incident.id, text="Услуга восстановлена", now=start + timedelta(hours=hours))
    return incidents.get(incident.id)


def test_an_outage_longer_than_permitted_at_a_time_is_flagged(ctx, sup, client, api_token):
    from crm.incidents import services as incidents

    ok = _outage(sup, "hot_water", T0, 3.5)
    long = _outage(sup, "hot_water", T0 + timedelta(days=5), 5, address="Ленина 7")
    assert incidents.recalculation(ok)["required"] is False
    flag = incidents.recalculation(long)
    assert flag["required"] is True and flag["permitted_once_h"] == 4 and flag["permitted_month_h"] == 8
    assert flag["duration_h"] == 5 and flag["excess_h"] == 1 and flag["reduction_percent"] == 0.15
    assert flag["basis"] == "ПП РФ № 354, прил. 1, п. 4"
    card = client.get(f"/api/v1/incidents/{long.id}", headers=api_token(sup)).get_json()
    assert card["recalculation"]["required"] is True
    heating = _outage(sup, "heating", T0 + timedelta(days=1), 10)
    assert incidents.recalculation(heating)["required"] is False  # 16 h permitted at a time
    power = _outage(sup, "electricity", T0 + timedelta(days=2), 3)
    assert incidents.recalculation(power)["required"] is True     # 2 h with two power sources
    lift = _outage(sup, "lift", T0, 72)
    assert incidents.recalculation(lift)["applies"] is False and incidents.recalculation(lift)["required"] is False


def test_the_months_total_on_the_same_house_counts(ctx, sup):
    from crm.incidents import services as incidents

    first = _outage(sup, "cold_water", T0, 3)
    second = _outage(sup, "cold_water", T0 + timedelta(days=3), 3)
    other_house = _outage(sup, "cold_water", T0 + timedelta(days=4), 3, address="Ленина 7")
    assert incidents.recalculation(second)["required"] is False  # 6 h of 8 in November
    third = _outage(sup, "cold_water", T0 + timedelta(days=6), 3)
    flag = incidents.recalculation(third)
    assert flag["required"] is True and flag["month_total_h"] == 9 and flag["excess_h"] == 1
    assert incidents.recalculation(other_house)["required"] is False  # another house: 3 h
    next_month = _outage(sup, "cold_water", T0 + timedelta(days=25), 3)  # 5 December
    assert incidents.recalculation(next_month)["month_total_h"] == 3
    assert incidents.recalculation(first)["month_total_h"] == 9


def test_an_open_outage_is_judged_until_now(ctx, sup):
    from crm.incidents import services as incidents

    open_one = _outage(sup, "gas", T0, None)
    assert incidents.recalculation(open_one, now=T0 + timedelta(hours=3))["required"] is False
    assert incidents.recalculation(open_one, now=T0 + timedelta(hours=5))["required"] is True
