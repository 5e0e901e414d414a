"""Scorecard versions and evaluations: editing makes a new version and every evaluation keeps its
own; scale criteria through the API; the editor page; pinned comments from the review page."""
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from tests.qa.test_qa_world import qa_env  # noqa: F401
from tests.factories import CallFactory, CitizenFactory

V2_SECTIONS = [{"code": "opening", "title": "Начало"}, {"code": "talk", "title": "Разговор"}]
V2_CRITERIA = [
    {"code": "greeting", "label": "Приветствие", "weight": 10, "section": "opening"},
    {"code": "tone", "label": "Доброжелательный тон", "weight": 40, "section": "talk", "kind": "scale", "scale_max": 5},
    {"code": "correct_information", "label": "Верная информация", "weight": 50, "critical": True, "section": "talk"},
]


def yes_to_all(card) -> dict:
    return {c["code"]: "yes" for c in card.criteria}


def test_editing_makes_a_new_version_and_evaluations_keep_theirs(ctx, make_user):
    from crm.qa import services as qa

    op, sup = make_user("operator"), make_user("supervisor")
    v1 = qa.ensure_default_scorecard()
    ev1 = qa.evaluate(CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True)), evaluator=sup, answers=yes_to_all(v1) | {"closing": "no"})
    assert (ev1.scorecard_id, ev1.score) == (v1.id, 85.0)

    v2, created = qa.save_scorecard(name="Форма 2026", sections=V2_SECTIONS, criteria=V2_CRITERIA, user=sup)
    assert created and v2.version == 2 and v2.family == v1.family and v2.created_by == sup.id
    assert qa.active_scorecard().id == v2.id and qa.get_scorecard(v1.id).active is False
    same, created = qa.save_scorecard(name="Форма 2026", sections=V2_SECTIONS, criteria=V2_CRITERIA, user=sup)
    assert not created and same.id == v2.id  # nothing changed: no version

    ev2 = qa.evaluate(CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True)), evaluator=sup,
                      answers={"greeting": "yes", "tone": 3, "correct_information": "yes"})
    assert ev2.scorecard_id == v2.id and ev2.score == 84.0  # (10 + 40·3/5 + 50) / 100
    assert qa.get(ev1.id).scorecard_id == v1.id and qa.get(ev1.id).score == 85.0
    assert [v.version for v in qa.versions()] == [2, 1]

    with pytest.raises(qa.EvaluationError):  # v1's answers do not fit v2
        qa.evaluate(CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True)), evaluator=sup, answers=yes_to_all(v1))


def test_evaluation_pages_show_the_version_they_were_scored_on(ctx, make_user, login):
    from crm.qa import services as qa

    op, sup = make_user("operator"), make_user("supervisor")
    v1 = qa.ensure_default_scorecard()
    ev1 = qa.evaluate(CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True)), evaluator=sup, answers=yes_to_all(v1))
    qa.save_scorecard(name="Форма 2026", sections=V2_SECTIONS, criteria=V2_CRITERIA, user=sup)
    client = login(sup)
    html = client.get(f"/qa/evaluations/{ev1.id}").get_data(as_text=True)
    assert "версия 1" in html and "Вежливость, без недопустимых фраз" in html and "Доброжелательный тон" not in html


def test_api_scores_on_the_active_version_with_scale_answers(ctx, make_user, api_token, client):
    from crm.qa import services as qa

    op, sup = make_user("operator"), make_user("supervisor")
    headers = api_token(sup)
    qa.ensure_default_scorecard()
    qa.save_scorecard(name="Форма 2026", sections=V2_SECTIONS, criteria=V2_CRITERIA, user=sup)
    call = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True))
    url = f"/api/v1/calls/{call.id}/evaluations"
    resp = client.post(url, json={"answers": {"greeting": "no", "tone": "5", "correct_information": "yes"}},
                       headers=headers)
    assert resp.status_code == 201, resp.get_json()
    ev = resp.get_json()
    assert ev["scorecard_version"] == 2 and ev["score"] == 90.0 and ev["answers"]["tone"] == 5
    assert ev["revision"] == 1 and ev["operator_status"] == "new" and ev["respond_by"]
    bad = client.post(url, json={"answers": {"greeting": "no", "tone": "6", "correct_information": "yes"}},
                      headers=headers)
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "invalid_answers"
    assert "от 0 до 5" in bad.get_json()["error"]["message"]
    na = client.post(url, json={"answers": {"greeting": "na", "tone": "na", "correct_information": "no"}},
                     headers=headers).get_json()
    assert na["score"] == 0.0  # the critical criterion failed


def test_scorecard_editor_saves_a_new_version(ctx, make_user, login):
    from crm.qa import services as qa

    admin = make_user("admin")
    v1 = qa.ensure_default_scorecard()
    client = login(admin)
    page = client.get("/qa/scorecard")
    assert page.status_code == 200 and "Базовая форма оценки звонка" in page.get_data(as_text=True)
    form = {"name": "Форма со шкалой", "section_code": ["opening", "", ""], "section_title": ["Начало", "Беседа", ""],
            "crit_code": ["greeting", "tone", ""], "crit_label": ["Приветствие", "Тон", ""],
            "crit_section": ["0", "1", "0"], "crit_kind": ["binary", "scale", "binary"],
            "crit_scale_max": ["", "4", ""], "crit_pass_min": ["", "", ""], "crit_weight": ["20", "80", ""],
            "crit_critical": ["no", "yes", "no"]}
    resp = client.post("/qa/scorecard", data=form)
    assert resp.status_code == 302
    card = qa.active_scorecard()
    assert card.version == 2 and card.name == "Форма со шкалой" and card.id != v1.id
    assert card.sections == [{"code": "opening", "title": "Начало"}, {"code": "s1", "title": "Беседа"}]
    assert qa.criteria_of(card)[1] == {"code": "tone", "label": "Тон", "weight": 80.0, "critical": True,
                                       "section": "s1", "kind": "scale", "scale_max": 4, "pass_min": 2}
    bad = client.post("/qa/scorecard", data=form | {"crit_weight": ["20", "0", ""]})
    assert bad.status_code == 400 and "вес критерия" in bad.get_data(as_text=True)
    assert qa.active_scorecard().version == 2


def test_operators_may_not_edit_the_scorecard(ctx, make_user, login):
    client = login(make_user("operator"))
    assert client.get("/qa/scorecard").status_code == 403
    assert client.post("/qa/scorecard", data={"name": "x"}).status_code == 403


def test_review_form_saves_pinned_comments_encrypted_and_goes_to_the_next_call(ctx, make_user, login):
    from crm.db import db
    from crm.qa import services as qa
    from crm.qa.models import Evaluation

    op, sup = make_user("operator"), make_user("supervisor")
    card = qa.ensure_default_scorecard()
    for r in qa.ensure_rules():
        qa.update_rule(r.id, active=r.kind == "random_per_operator", period="week",
                       n=5 if r.kind == "random_per_operator" else None, codes=(r.params or {}).get("codes"))
    calls = [CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True)) for _ in range(2)]
    qa.run_sampling()
    first, second = [it.call_id for it in qa.queue_for(sup)]
    client = login(sup)
    page = client.get(f"/qa/review/{first}").get_data(as_text=True)
    assert f'id="next-call" class="btn secondary" href="/qa/review/{second}"' in page
    data = {f"c_{c['code']}": "yes" for c in card.criteria} | {
        "c_greeting": "no", "comment": "В целом хорошо", "next": "review",
        "note_at": ["0:05", "1:00", "0:20"], "note_text": ["Не назвала линию", "", "Уточнила адрес"]}
    resp = client.post(f"/calls/{first}/evaluations", data=data)
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/qa/review/{second}")
    ev = db.session.execute(sa.select(Evaluation).where(Evaluation.call_id == first)).scalar_one()
    assert ev.score == 90.0
    assert [(n["at_s"], n["text"]) for n in ev.notes] == [(5.0, "Не назвала линию"), (20.0, "Уточнила адрес")]
    assert "Уточнила".encode() not in ev.notes_enc  # ciphertext
    shown = client.get(f"/qa/evaluations/{ev.id}").get_data(as_text=True)
    assert re.search(r'#t=5\.0">0:05</a> Не назвала линию', shown), shown
    # the last call of the queue goes back to the (now empty) queue
    resp = client.post(f"/calls/{second}/evaluations", data=data | {"note_at": [], "note_text": []})
    assert resp.headers["Location"].endswith("/qa/queue")
    assert {c.id for c in calls} == {first, second}


def test_a_pinned_comment_outside_the_recording_is_refused(ctx, make_user, login):
    from crm.db import db
    from crm.qa import services as qa
    from crm.qa.models import Evaluation

    op, sup = make_user("operator"), make_user("supervisor")
    card = qa.ensure_default_scorecard()
    call = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True))  # 29 s of speech
    client = login(sup)
    data = {f"c_{c['code']}": "yes" for c in card.criteria} | {"note_at": ["5:00"], "note_text": ["Поздно"]}
    resp = client.post(f"/calls/{call.id}/evaluations", data=data, follow_redirects=True)
    assert "за пределами записи" in resp.get_data(as_text=True)
    assert db.session.execute(sa.select(sa.func.count()).select_from(Evaluation)).scalar_one() == 0


def test_scorecard_starts_unanswered_and_every_criterion_is_required(ctx, make_user, login):
    """No criterion is preselected on the call page or the review page; a scorecard sent with
    criteria unanswered is not saved, comes back (422) with the answers given and a Russian
    error naming the unanswered criteria."""
    from crm.db import db
    from crm.qa import services as qa
    from crm.qa.models import Evaluation

    op, sup = make_user("operator"), make_user("supervisor")
    card = qa.ensure_default_scorecard()
    call = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True))
    client = login(sup)
    for url in (f"/calls/{call.id}", f"/qa/review/{call.id}"):
        page = client.get(url).get_data(as_text=True)
        assert 'id="score-form"' in page
        assert not re.search(r'<input checked[^>]*name="c_', page), url
        assert re.search(r'<input[^>]*name="c_greeting"[^>]*required', page), url
    # a one-click submit scores nothing
    for extra in ({}, {"next": "review"}):
        resp = client.post(f"/calls/{call.id}/evaluations", data={"comment": "быстро"} | extra)
        html = resp.get_data(as_text=True)
        assert resp.status_code == 422
        assert "Оценка не сохранена: не отмечен ответ по критериям" in html
        assert "«Приветствие: линия и имя оператора»" in html and "«Завершение: срок, номер заявки, прощание»" in html
    # partly answered: only the missing one is named, and the given answers are kept on the form
    partial = {f"c_{c['code']}": "yes" for c in card.criteria if c["code"] != "politeness"} | {"c_closing": "no"}
    resp = client.post(f"/calls/{call.id}/evaluations", data=partial)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "по критерию «Вежливость, без недопустимых фраз»" in html and "«Приветствие" not in html
    assert re.search(r'<input checked[^>]*name="c_closing"[^>]*value="no"', html)
    assert db.session.execute(sa.select(sa.func.count()).select_from(Evaluation)).scalar_one() == 0


def test_saved_evaluation_redirects_and_is_shown_not_a_fresh_form(ctx, make_user, login):
    from crm.db import db
    from crm.qa import services as qa
    from crm.qa.models import Evaluation

    op, sup = make_user("operator"), make_user("supervisor")
    card = qa.ensure_default_scorecard()
    call = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True))
    client = login(sup)
    data = {f"c_{c['code']}": "yes" for c in card.criteria} | {"c_closing": "no", "comment": "Без срока"}
    resp = client.post(f"/calls/{call.id}/evaluations", data=data)
    assert resp.status_code == 302  # POST/redirect/GET: reloading does not send the scorecard again
    ev = db.session.execute(sa.select(Evaluation)).scalar_one()
    assert resp.headers["Location"].endswith(f"/calls/{call.id}?saved={ev.id}#evaluation-{ev.id}")
    html = client.get(f"/calls/{call.id}?saved={ev.id}").get_data(as_text=True)
    assert f'id="evaluation-{ev.id}" class="qa-saved"' in html and "Сохранено:" in html and "Без срока" in html
    # the scorecard for another evaluation is folded away and empty
    assert '<details class="qa-new-evaluation">' in html
    assert not re.search(r'<input checked[^>]*name="c_', html)
