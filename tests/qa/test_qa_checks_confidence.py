"""Automatic QA checks use Whisper's word probabilities (issue 18 point 3): a check matched only
through words below ``unsure_p`` is ``unsure`` («не уверено»), not passed nor failed. Unit tests (no app)
and the API and review page on PostgreSQL + Redis."""
from __future__ import annotations

import pytest

from crm.qa import checks
from tests.api.test_api import as_role  # noqa: F401  (a fixture)


def words(start: float, spec: list[tuple[str, float]], step: float = 0.4) -> list[dict]:
    return [{"start": round(start + i * step, 3), "end": round(start + (i + 1) * step, 3), "word": w, "probability": p}
            for i, (w, p) in enumerate(spec)]


def seg(start, text, spec=None, speaker="operator"):
    s = {"start": start, "end": start + 3.0, "speaker": speaker, "text": text}
    if spec is not None:
        s["words"] = words(start, spec)
    return s


def greeting_seg(p_hello: float = 0.9, p_line: float = 0.9):
    return seg(0.4, "Горячая линия ЖКХ, оператор Анна, здравствуйте!",
               [("Горячая", p_line), ("линия", p_line), ("ЖКХ,", 0.9), ("оператор", 0.9), ("Анна,", 0.9),
                ("здравствуйте!", p_hello)])


def closing_seg(p: float = 0.9, start: float = 26.0):
    return seg(start, "Спасибо за обращение, всего доброго!",
               [("Спасибо", p), ("за", p), ("обращение,", p), ("всего", 0.9), ("доброго!", 0.9)])


def by_code(results):
    return {r["code"]: r for r in results}


def test_greeting_heard_at_0_3_is_unsure_not_failed():
    res = by_code(checks.run([greeting_seg(p_hello=0.3), closing_seg()]))
    g = res["greeting"]
    assert (g["state"], g["passed"]) == ("unsure", False)
    assert "неуверенно" in g["detail"] and "вероятность 0,30" in g["detail"]
    assert (res["closing"]["state"], res["closing"]["passed"]) == ("passed", True)


def test_sure_words_pass_and_no_words_count_as_sure():
    res = by_code(checks.run([greeting_seg(), closing_seg()]))
    assert res["greeting"]["state"] == "passed" and res["greeting"]["passed"] is True
    plain = [{k: v for k, v in s.items() if k != "words"} for s in (greeting_seg(0.1), closing_seg(0.1))]
    res = by_code(checks.run(plain))
    assert res["greeting"]["state"] == "passed" and res["closing"]["state"] == "passed"


def test_a_missing_greeting_stays_failed_whatever_the_probabilities():
    res = by_code(checks.run([seg(0.4, "Алло, что у вас?", [("Алло,", 0.2), ("что", 0.2), ("у", 0.2), ("вас?", 0.2)]),
                              closing_seg()]))
    assert (res["greeting"]["state"], res["greeting"]["passed"]) == ("failed", False)


def test_the_surest_occurrence_counts():
    # «спасибо за обращение» doubtful, «всего доброго» sure in the same segment: passed
    res = by_code(checks.run([greeting_seg(), closing_seg(p=0.2)]))
    assert res["closing"]["state"] == "passed"
    # a doubtful farewell, then a sure one in an earlier tail segment: passed too
    doubtful = seg(26.0, "Всего доброго!", [("Всего", 0.2), ("доброго!", 0.3)])
    res = by_code(checks.run([greeting_seg(), closing_seg(start=24.0), doubtful]))
    assert res["closing"]["state"] == "passed"
    res = by_code(checks.run([greeting_seg(), doubtful]))
    assert (res["closing"]["state"], res["closing"]["passed"]) == ("unsure", False)


def test_a_forbidden_phrase_heard_doubtfully_accuses_no_one():
    rude = seg(10.0, "Короче, ждите.", [("Короче,", 0.25), ("ждите.", 0.9)])
    res = by_code(checks.run([greeting_seg(), rude, closing_seg()]))
    f = res["forbidden_phrases"]
    assert (f["state"], f["passed"], f["at_s"]) == ("unsure", False, 10.0)
    sure = seg(10.0, "Короче, ждите.", [("Короче,", 0.8), ("ждите.", 0.9)])
    f = by_code(checks.run([greeting_seg(), sure, closing_seg()]))["forbidden_phrases"]
    assert (f["state"], f["passed"]) == ("failed", False)


def test_threshold_is_configurable_and_numbers_in_digits_still_align():
    # the stored text has «5» where the words say «пять»: the other words keep their probabilities
    s = seg(9.0, "Назовите адрес, дом 5, верно?", [("Назовите", 0.9), ("адрес,", 0.45), ("дом", 0.9), ("пять,", 0.9),
                                                  ("верно?", 0.9)])
    assert by_code(checks.run([greeting_seg(), s, closing_seg()]))["address"]["state"] == "unsure"
    res = by_code(checks.run([greeting_seg(), s, closing_seg()], {"address": {"unsure_p": 0.4}}))
    assert res["address"]["state"] == "passed"


def test_a_missed_script_line_fails_an_unsure_greeting():
    line = {"number": 1, "stage": "opening", "text": "Назовите номер линии", "phrases": ["номер линии"], "script": "S"}
    res = by_code(checks.run([greeting_seg(p_hello=0.3), closing_seg()], script_lines=[line]))
    assert (res["greeting"]["state"], res["greeting"]["passed"]) == ("failed", False)


# --- stored, in the API and on the review page -------------------------------------------------------

def test_api_and_review_page_show_unsure(ctx, client, as_role, login, make_user):
    from tests.factories import CallFactory, CitizenFactory

    op_user, _ = as_role("operator")
    sup_user, sup = as_role("supervisor")
    segs = [greeting_seg(p_hello=0.3), seg(9.0, "Назовите адрес и телефон для связи."), closing_seg()]
    call = CallFactory(operator=op_user, citizen=CitizenFactory(qa_consent=True), segments=segs)
    body = client.get(f"/api/v1/calls/{call.id}", headers=sup).get_json()
    qa = {c["code"]: c for c in body["qa_checks"]}
    assert (qa["greeting"]["state"], qa["greeting"]["passed"]) == ("unsure", False)
    assert (qa["closing"]["state"], qa["closing"]["passed"]) == ("passed", True)
    login(sup_user)
    page = client.get(f"/qa/review/{call.id}").get_data(as_text=True)
    assert 'data-code="greeting" data-state="unsure"' in page and "не уверено" in page


def test_review_page_masks_the_citizen_and_offers_the_logged_reveal(ctx, client, login, make_user):
    from tests.calls.test_transcript_words import dictated_segments
    from tests.factories import CallFactory, CitizenFactory

    op_user, sup_user = make_user("operator"), make_user("supervisor")
    call = CallFactory(operator=op_user, citizen=CitizenFactory(qa_consent=True), segments=dictated_segments())
    login(sup_user)
    page = client.get(f"/qa/review/{call.id}").get_data(as_text=True)
    assert "[телефон]" in page and "Сидоров" not in page and 'id="transcript-reveal"' in page


def test_dashboard_counts_unsure_apart_from_failed(ctx, make_user, login):
    from datetime import datetime, timedelta, timezone

    from crm.qa import services as qa
    from tests.factories import CallFactory, CitizenFactory

    op = make_user("operator")
    CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True),
                segments=[greeting_seg(p_hello=0.3), closing_seg()])
    CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True), segments=[greeting_seg(), closing_seg()])
    now = datetime.now(timezone.utc)
    d = qa.dashboard(now - timedelta(days=1), now + timedelta(days=1), operator_id=op.id)
    g = {r["code"]: r for r in d["checks"]}["greeting"]
    assert (g["total"], g["failed"], g["unsure"]) == (2, 0, 1)
    html = login(make_user("supervisor")).get("/qa/dashboard").get_data(as_text=True)
    assert "Не уверено" in html
