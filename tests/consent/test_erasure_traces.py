"""Erasure leaves no traces and no broken pages (issue 13, point 7): after a citizen is erased
through the four-eyes path, the appeal and call pages say «данные уничтожены» (never «None»), the
call's audio answers 410, the call cannot be evaluated (form and API), and the appeal's building
key and the automatic QA checks' sentences hold nothing derived from the citizen."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from crm.appeals.models import Appeal
from crm.consent import rights
from crm.db import db
from crm.qa import services as qa
from crm.qa.models import CheckResult, Evaluation
from tests.factories import CallFactory, CitizenFactory

#: what the citizen said, quoted by an automatic check (the forbidden-words check quotes the phrase)
SEGMENTS = [
    {"start": 0.3, "end": 4.0, "speaker": "operator", "channel": 0, "text": "Горячая линия ЖКХ, оператор Анна, здравствуйте!"},
    {"start": 4.5, "end": 9.0, "speaker": "citizen", "channel": 1, "text": "Здравствуйте, на Садовой пять нет горячей воды."},
    {"start": 9.5, "end": 14.0, "speaker": "operator", "channel": 0, "text": "Записала, заявка передана в аварийную службу."},
    {"start": 14.5, "end": 17.0, "speaker": "operator", "channel": 0, "text": "Спасибо за обращение, всего доброго."},
]


@pytest.fixture()
def erased(ctx, make_user, recordings):
    """A citizen with an appeal and a transcribed call (automatic checks stored),
    erased by one DPO's request and a second DPO's approval. Returns the ids and users."""
    op, sup = make_user("operator"), make_user("supervisor")
    qa.ensure_default_scorecard()
    citizen = CitizenFactory(qa_consent=True, sadovaya=True)
    call = CallFactory(operator=op, citizen=citizen, segments=SEGMENTS)
    appeal = db.session.get(Appeal, call.appeal_id)
    assert appeal.building_key  # the citizen's building, as a blind index copied onto the appeal
    details = db.session.execute(sa.select(CheckResult.detail).where(CheckResult.call_id == call.id)).scalars().all()
    assert any(details)  # sentences about what was said
    req = rights.request_erasure(citizen.id, "отзыв согласия, заявление", user=make_user("dpo"))
    rights.approve_erasure(req, user=make_user("dpo"))
    db.session.expire_all()
    return {"citizen": citizen.id, "appeal": appeal.id, "call": call.id, "operator": op, "supervisor": sup}


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def test_pages_of_an_erased_citizen_say_the_data_were_destroyed(erased, login):
    client = login(erased["supervisor"])
    for url in (f"/appeals/{erased['appeal']}", f"/calls/{erased['call']}", f"/qa/review/{erased['call']}"):
        resp = client.get(url)
        assert resp.status_code == 200, url
        text = _text(resp.get_data(as_text=True))
        assert "None" not in text, (url, [line for line in text.splitlines() if "None" in line])
        assert "данные уничтожены" in text.lower(), url
    page = client.get(f"/calls/{erased['call']}").get_data(as_text=True)
    assert "/audio" not in page  # no player for a recording that is gone
    assert 'id="score-form"' not in page and "оценить его нельзя" in page


def test_the_audio_of_an_erased_call_is_gone(erased, login):
    client = login(erased["supervisor"])
    resp = client.get(f"/calls/{erased['call']}/audio")
    assert resp.status_code == 410
    assert "уничтожены" in resp.get_data(as_text=True)
    ranged = client.get(f"/calls/{erased['call']}/audio", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 410


def test_an_erased_call_cannot_be_evaluated(erased, login, api_token, ctx):
    card = qa.ensure_default_scorecard()
    answers = {c["code"]: "yes" for c in card.criteria}
    api = ctx.test_client().post(f"/api/v1/calls/{erased['call']}/evaluations", json={"answers": answers},
                                 headers=api_token(erased["supervisor"]))
    assert api.status_code == 410 and api.get_json()["error"]["code"] == "erased", api.get_json()
    client = login(erased["supervisor"])
    form = client.post(f"/calls/{erased['call']}/evaluations",
                       data={f"c_{code}": value for code, value in answers.items()} | {"comment": "хорошо"})
    assert form.status_code == 410
    assert "Оценка не сохранена" in form.get_data(as_text=True)
    assert db.session.execute(sa.select(sa.func.count()).select_from(Evaluation)
                              .where(Evaluation.call_id == erased["call"])).scalar_one() == 0


def test_nothing_derived_from_the_citizen_is_left_in_clear(erased):
    appeal = db.session.get(Appeal, erased["appeal"])
    assert appeal.building_key is None
    rows = db.session.execute(sa.select(CheckResult).where(CheckResult.call_id == erased["call"])).scalars().all()
    assert rows and all(r.detail in ("", None) for r in rows)
    assert all(r.passed is not None for r in rows)  # the outcomes stay as statistics


def test_an_erased_citizens_appeal_no_longer_names_the_house(ctx, make_user, api_token):
    """The house picked from the buildings register is cleared with the citizen (re-audit N1): the
    appeal's API answer carries no building, and a later appeal from that house is no repeat of it."""
    from datetime import timedelta

    from crm.appeals import services as appeals
    from crm.buildings.services import find, import_csv
    from crm.db import utcnow

    import_csv('address\n"ул. Цветочная, д. 7"\n'.encode())
    house = find("ул. Цветочная, д. 7")
    citizen = CitizenFactory()
    appeal = appeals.create(citizen, category="routine", topic="heating", description="Холодные батареи",
                            channel="phone", operator_id=None, building_id=house.id)
    assert appeal.building_id == house.id
    dpo = make_user("dpo")
    rights.approve_erasure(rights.request_erasure(citizen.id, "требование заявителя", user=dpo), user=make_user("dpo"))
    db.session.expire_all()
    assert db.session.get(Appeal, appeal.id).building_id is None
    body = ctx.test_client().get(f"/api/v1/appeals/{appeal.id}", headers=api_token(make_user("operator"))).get_json()
    assert "Цветочная" not in str(body)
    neighbour = CitizenFactory()
    assert appeals.find_repeat_of(neighbour, "heating", utcnow() + timedelta(hours=1), house.id) is None
