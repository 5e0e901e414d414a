"""Intake picks the house from the buildings register (issue 14, point 2): the operator's form
takes the id the autocomplete set, or matches the typed address on the server (the form without
its script); an address not in the register is refused on the field; the service refuses an
unknown id."""
from __future__ import annotations

import uuid

import pytest

from tests.clients import SharedContextClient
from tests.factories import CitizenFactory


@pytest.fixture()
def register(ctx):
    from crm.buildings.services import import_csv

    import_csv("address,entrances,apartments\n\"г. Москва, ул. Ленина, д. 5\",4,120\n"
               "\"г. Москва, ул. Ленина, д. 15\",2,40\n".encode())
    from crm.buildings.services import find

    return find("Москва, ул Ленина 5"), find("москва ул. ленина д15")


def _form(**over) -> dict:
    data = {"submission_key": uuid.uuid4().hex, "category": "routine", "topic": "heating", "channel": "phone",
            "description": "Холодные батареи в квартире", "consent_sms": "unknown", "consent_recording": "unknown"}
    data.update(over)
    return data


def _appeal_building(resp):
    from crm.appeals.services import get

    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    return get(resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1]).building_id


def test_the_form_stores_the_picked_or_typed_building(ctx, make_user, register):
    five, fifteen = register
    op = SharedContextClient(ctx, make_user("operator"))
    citizen = CitizenFactory()
    url = f"/citizens/{citizen.id}/appeals/new"
    assert "data-building-picker" in op.get(url).get_data(as_text=True)
    # the script picked a suggestion: the id is sent
    assert _appeal_building(op.post(url, data=_form(building="ул Ленина 15", building_id=str(fifteen.id)))) \
        == fifteen.id
    # no script: the typed address, in another spelling, is the house of the register
    assert _appeal_building(op.post(url, data=_form(building="МОСКВА, улица Ленина, дом 5", building_id=""))) \
        == five.id
    # nothing typed: no building
    assert _appeal_building(op.post(url, data=_form())) is None
    # typed and not in the register: the form comes back with the reason on the field, nothing registered
    resp = op.post(url, data=_form(building="ул. Ленина, д. 7"))
    assert resp.status_code == 422
    assert "Дома нет в реестре" in resp.get_data(as_text=True)


def test_the_service_refuses_an_unknown_building(ctx, make_user, register):
    from crm.appeals import services

    citizen = CitizenFactory()
    with pytest.raises(services.AppealError) as err:
        services.register_appeal(make_user("operator"), citizen_id=citizen.id, category="routine", topic="heating",
                                 description="Нет горячей воды", channel="phone", building_id=999999)
    assert err.value.field == "building_id"
    intake = services.register_appeal(make_user("operator"), citizen_id=citizen.id, category="routine",
                                      topic="heating", description="Нет горячей воды", channel="phone",
                                      building_id=register[0].id)
    assert intake.appeal.building_id == register[0].id


def test_the_api_takes_the_building_and_the_card_shows_it(ctx, client, make_user, api_token, register):
    five, _ = register
    op = make_user("operator")
    citizen = CitizenFactory()
    body = {"citizen_id": citizen.id, "category": "routine", "topic": "heating", "description": "Нет отопления"}
    resp = client.post("/api/v1/appeals", json={**body, "building_id": 999999}, headers=api_token(op))
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "invalid_building_id"
    resp = client.post("/api/v1/appeals", json={**body, "building_id": five.id}, headers=api_token(op))
    assert resp.status_code == 201, resp.get_json()
    appeal_id = resp.get_json()["id"]
    card = client.get(f"/api/v1/appeals/{appeal_id}", headers=api_token(op)).get_json()
    assert card["building"] == {"id": five.id, "address": "г. Москва, ул. Ленина, д. 5", "fias_id": None,
                                "entrances": 4, "apartments": 120}
    resp = client.post("/api/v1/appeals", json=body, headers=api_token(op))
    assert client.get(f"/api/v1/appeals/{resp.get_json()['id']}", headers=api_token(op)).get_json()["building"] is None
    page = SharedContextClient(ctx, make_user("operator")).get(f"/appeals/{appeal_id}").get_data(as_text=True)
    assert 'id="appeal-building"' in page and "г. Москва, ул. Ленина, д. 5" in page


def test_a_repeat_is_found_on_the_building_id(ctx, make_user, register):
    """Two neighbours who gave no address (or wrote it differently) on the same house and topic: the
    second appeal is a repeat of the first through the register's building id; another house is not."""
    from crm.appeals import services

    five, fifteen = register
    op = make_user("operator")
    first_neighbour, second_neighbour, third = CitizenFactory(address=None), CitizenFactory(address="Ленина 5"), \
        CitizenFactory(address=None)
    args = dict(category="routine", topic="heating", description="Нет отопления в подъезде", channel="phone")
    first = services.register_appeal(op, citizen_id=first_neighbour.id, building_id=five.id, **args).appeal
    second = services.register_appeal(op, citizen_id=second_neighbour.id, building_id=five.id, **args).appeal
    other = services.register_appeal(op, citizen_id=third.id, building_id=fifteen.id, **args).appeal
    assert second.repeat_of_id == first.id
    assert other.repeat_of_id is None
