"""Phrase search in call transcripts (crm/calls/search.py): word forms, case and ё/е, speaker and
operator filters, the period and scan bounds, the access log (one entry per transcript decrypted,
none for calls left unread), roles, the page and the API.

Transcripts are stored as the transcription job stores them (``save_transcript``), with word
timestamps where a test needs them; Whisper is not run."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from crm.db import db, utcnow
from crm.security.models import AccessLogEntry
from tests.qa.test_qa_world import qa_env  # noqa: F401
from tests.factories import GOOD_SEGMENTS, CallFactory, CitizenFactory
from tests.mfa import sign_in


def _words(start: float, spec: list[tuple[str, float]]) -> list[dict]:
    """Word timestamps: ``spec`` is ``[(word, duration_s)]`` spoken back to back from ``start``."""
    out, t = [], start
    for word, d in spec:
        out.append({"start": round(t, 3), "end": round(t + d, 3), "word": word, "probability": 0.9})
        t += d
    return out


CITIZEN_SEG = {"start": 3.0, "end": 6.8, "speaker": "citizen", "channel": 1,
               "text": "Здравствуйте, у нас нет горячей воды уже третий день.",
               "words": _words(3.0, [("Здравствуйте,", 0.8), ("у", 0.1), ("нас", 0.2), ("нет", 0.3), ("горячей", 0.5),
                                     ("воды", 0.4), ("уже", 0.3), ("третий", 0.4), ("день.", 0.4)])}
OPERATOR_SEG = {"start": 7.0, "end": 11.0, "speaker": "operator", "channel": 0,
                "text": "Горячую воду отключили на ремонт, ещё неделя."}  # no word timestamps
OLD_SEGMENTS = [{"start": 0.5, "end": 4.0, "speaker": "citizen", "channel": 1, "text": "Опять нет горячей воды."}]
PHRASE = "Горячая вода"


@pytest.fixture()
def w(ctx, make_user, api_token):
    """Two operators' calls in the last day, an old call (40 days), a call whose citizen gave no QA
    consent; a supervisor, an admin, an operator and the DPO with API tokens."""
    users = {role: make_user(role) for role in ("supervisor", "admin", "operator", "dpo")}
    op2 = make_user("operator")
    now = utcnow()
    c1 = CallFactory(operator=users["operator"], citizen=CitizenFactory(qa_consent=True), segments=[
        {"start": 0.3, "end": 2.8, "speaker": "operator", "channel": 0, "text": "Горячая линия ЖКХ, оператор Анна."},
        CITIZEN_SEG, OPERATOR_SEG], created_at=now - timedelta(hours=1))
    c2 = CallFactory(operator=op2, citizen=CitizenFactory(qa_consent=True), segments=GOOD_SEGMENTS,
                     created_at=now - timedelta(hours=2))
    old = CallFactory(operator=op2, citizen=CitizenFactory(qa_consent=True), segments=OLD_SEGMENTS,
                      created_at=now - timedelta(days=40))
    no_consent = CallFactory(operator=op2, citizen=CitizenFactory(), segments=OLD_SEGMENTS,
                           created_at=now - timedelta(hours=3))
    headers = {role: api_token(u) for role, u in users.items()}
    return {"users": users, "op2": op2, "c1": c1, "c2": c2, "old": old, "no_consent": no_consent,
            "headers": headers}


def _last_seq() -> int:
    db.session.commit()
    return db.session.execute(db.select(db.func.coalesce(db.func.max(AccessLogEntry.seq), 0))).scalar()


def _entries(after: int, action: str = "transcript.search") -> list[AccessLogEntry]:
    db.session.commit()
    return list(db.session.execute(db.select(AccessLogEntry).where(AccessLogEntry.seq > after,
                                                                   AccessLogEntry.action == action)
                                   .order_by(AccessLogEntry.seq)).scalars())


def _search(phrase, user, **kw):
    from crm.calls import search

    return search.search_transcripts(phrase, user=user, **kw)


def test_other_word_forms_case_and_yo_are_found_with_word_times(ctx, w):
    res = _search(PHRASE, w["users"]["supervisor"])
    got = {(h.call_id, h.speaker, h.snippet[slice(*h.highlight)]) for h in res.hits}
    assert got == {(w["c1"].id, "citizen", "горячей воды"), (w["c1"].id, "operator", "Горячую воду"),
                   (w["c2"].id, "citizen", "горячей воды")}
    assert res.calls_scanned == 2 and res.calls_matched == 2 and res.calls_skipped_no_consent == 1
    assert not res.scan_limit_reached and not res.hit_limit_reached
    # newest call first; the exact moment from the word timestamps, else the segment's bounds
    assert [h.call_id for h in res.hits][:2] == [w["c1"].id, w["c1"].id]
    cit = next(h for h in res.hits if h.call_id == w["c1"].id and h.speaker == "citizen")
    assert (cit.start, cit.end, cit.exact) == (4.4, 5.3, True)
    assert (cit.segment_start, cit.segment_end) == (3.0, 6.8)
    assert cit.snippet == CITIZEN_SEG["text"] and cit.operator_name == w["users"]["operator"].display_name
    op = next(h for h in res.hits if h.speaker == "operator")
    assert (op.start, op.end, op.exact) == (7.0, 11.0, False)
    # ё/е and case both ways; words must follow one another
    assert [h.call_id for h in _search("ЕЩЕ неделя", w["users"]["admin"]).hits] == [w["c1"].id]
    assert [h.call_id for h in _search("ещё НЕДЕЛИ", w["users"]["admin"]).hits] == [w["c1"].id]
    assert _search("вода горячая", w["users"]["admin"]).hits == []
    assert _search("горячей нет", w["users"]["admin"]).hits == []


def test_speaker_and_operator_filters(ctx, w):
    sup = w["users"]["supervisor"]
    assert {(h.call_id, h.speaker) for h in _search(PHRASE, sup, speaker="operator").hits} == {(w["c1"].id, "operator")}
    assert {(h.call_id, h.speaker) for h in _search(PHRASE, sup, speaker="citizen").hits} == {
        (w["c1"].id, "citizen"), (w["c2"].id, "citizen")}
    assert {h.call_id for h in _search(PHRASE, sup, operator_id=w["op2"].id).hits} == {w["c2"].id}


def test_the_period_and_the_scan_bound(ctx, w, monkeypatch):
    sup = w["users"]["supervisor"]
    assert w["old"].id not in {h.call_id for h in _search(PHRASE, sup).hits}  # default: the last 30 days
    res = _search(PHRASE, sup, start=utcnow() - timedelta(days=45))
    assert w["old"].id in {h.call_id for h in res.hits} and res.calls_scanned == 3
    res = _search(PHRASE, sup, start=utcnow() - timedelta(days=45), end=utcnow() - timedelta(days=30))
    assert {h.call_id for h in res.hits} == {w["old"].id}
    monkeypatch.setitem(ctx.config, "CRM_CALL_SEARCH_MAX_CALLS", 1)
    res = _search(PHRASE, sup)
    assert res.scan_limit_reached and res.calls_scanned == 1 and res.max_calls == 1
    assert {h.call_id for h in res.hits} == {w["c1"].id} and res.scanned_back_to == w["c1"].created_at
    monkeypatch.setitem(ctx.config, "CRM_CALL_SEARCH_MAX_CALLS", 2)
    assert not _search(PHRASE, sup).scan_limit_reached  # exactly the two consenting calls: nothing left unread
    res = _search(PHRASE, sup, limit=1)
    assert res.hit_limit_reached and len(res.hits) == 1 and res.calls_scanned == 1


def test_each_decrypted_transcript_is_logged_once_and_unread_calls_are_not(ctx, w):
    from crm.calls.search import SearchError

    sup = w["users"]["supervisor"]
    before = _last_seq()
    _search("лифт не работает", sup)  # no hit: the transcripts were still decrypted
    got = [(e.call_id, e.citizen_id, e.actor_id, e.actor_role, e.purpose, e.fields, e.detail, e.outcome)
           for e in _entries(before)]
    assert sorted(got) == sorted([
        (c.id, c.citizen_id, sup.id, "supervisor", "call_recording_qa", "transcript", "hits=0", "ok")
        for c in (w["c1"], w["c2"])])
    assert all(e.appeal_id for e in _entries(before))
    before = _last_seq()
    _search(PHRASE, sup)
    assert sorted((e.call_id, e.detail) for e in _entries(before)) == sorted([(w["c1"].id, "hits=2"),
                                                                              (w["c2"].id, "hits=1")])
    assert not _entries(before, "transcript.view")
    for bad in ("", "  ", "в", "да"):
        before = _last_seq()
        with pytest.raises(SearchError):
            _search(bad, sup)
        assert _last_seq() == before


def test_roles_operator_dpo_and_executor_are_refused(ctx, w, make_user, login):
    from crm.security.permissions import PermissionDenied

    for role in ("operator", "dpo"):
        with pytest.raises(PermissionDenied):
            _search(PHRASE, w["users"][role])
    before = _last_seq()
    for user in (w["users"]["operator"], w["users"]["dpo"], make_user("executor")):
        client = ctx.test_client()
        sign_in(client, user)
        assert client.get("/calls/search").status_code == 403
        assert client.post("/calls/search", data={"q": PHRASE}).status_code == 403
    for role in ("operator", "dpo"):
        resp = ctx.test_client().post("/api/v1/calls/search", json={"q": PHRASE}, headers=w["headers"][role])
        assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "forbidden"
    assert ctx.test_client().post("/api/v1/calls/search", json={"q": PHRASE}).status_code == 401
    assert _entries(before) == []


def test_the_page_lists_highlighted_hits_linking_to_the_moment(ctx, w, login):
    client = login(w["users"]["supervisor"])
    html = client.get("/calls/search").get_data(as_text=True)
    assert 'name="q"' in html and 'href="/calls/search"' in html  # the form, and the navigation link
    assert 'id="search-result"' not in html
    resp = client.post("/calls/search", data={"q": "ГОРЯЧАЯ  вода", "speaker": "citizen"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200, html[:500]
    assert "<mark>горячей воды</mark>" in html and "<mark>Горячую воду</mark>" not in html
    assert f'href="/calls/{w["c1"].id}#t=4.40"' in html and f'href="/calls/{w["c2"].id}#t=4.50"' in html
    assert "без согласия на контроль качества пропущено: 1" in html
    # the link opens the call page with the player, whose script seeks to #t= / ?t=
    page = client.get(f"/calls/{w['c1'].id}?t=4.4").get_data(as_text=True)
    assert 'id="player"' in page and "/static/call.js" in page
    js = client.get("/static/call.js").get_data(as_text=True)
    assert "window.location.search" in js


@pytest.mark.parametrize("query, message", [
    ({"q": ""}, "Введите фразу для поиска."),
    ({"q": "в"}, "Фраза слишком короткая"),
    ({"q": PHRASE, "start": "31.02.2026"}, "Неверная дата «31.02.2026»"),
    ({"q": PHRASE, "end": "2026-13-01"}, "Неверная дата"),
    ({"q": PHRASE, "start": "2026-03-10", "end": "2026-03-01"}, "Начало периода позже его конца."),
    ({"q": PHRASE, "speaker": "boss"}, "Неизвестная роль говорящего"),
])
def test_bad_input_gets_a_russian_message_and_no_scan(ctx, w, login, query, message):
    client = login(w["users"]["supervisor"])
    before = _last_seq()
    resp = client.post("/calls/search", data=query)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and message in html and 'id="search-result"' not in html
    assert _entries(before) == []


def test_api_search(ctx, w):
    client = ctx.test_client()
    before = _last_seq()
    resp = client.post("/api/v1/calls/search", json={"q": "горячие воды", "speaker": "citizen"},
                       headers=w["headers"]["supervisor"])
    assert resp.status_code == 200, resp.data[:300]
    data = resp.get_json()
    assert [(h["call_id"], h["speaker"], h["start"], h["exact"]) for h in data["items"]] == [
        (w["c1"].id, "citizen", 4.4, True), (w["c2"].id, "citizen", 4.5, False)]
    hit = data["items"][0]
    assert hit["snippet"][hit["highlight"][0]:hit["highlight"][1]] == "горячей воды"
    assert hit["call_at"].endswith("+00:00") and hit["operator_id"] == w["users"]["operator"].id
    assert data["calls_scanned"] == 2 and data["calls_skipped_no_consent"] == 1
    assert data["scan_limit_reached"] is False and data["query"]["speaker"] == "citizen"
    assert len(_entries(before)) == 2
    resp = client.post("/api/v1/calls/search", json={"q": PHRASE, "start": "2000-01-01"},
                       headers=w["headers"]["admin"])
    assert w["old"].id in {h["call_id"] for h in resp.get_json()["items"]}
    for query, code in (({}, "q_required"), ({"q": "да"}, "q_too_short"),
                        ({"q": PHRASE, "start": "x"}, "invalid_start"),
                        ({"q": PHRASE, "limit": "0"}, "invalid_limit"), ({"q": PHRASE, "limit": 0}, "invalid_limit"),
                        ({"q": PHRASE, "operator_id": "abc"}, "invalid_operator_id")):
        resp = client.post("/api/v1/calls/search", json=query, headers=w["headers"]["supervisor"])
        assert resp.status_code == 400 and resp.get_json()["error"]["code"] == code, (query, resp.data)
    resp = client.post("/api/v1/calls/search", json={"q": PHRASE, "operator_id": w["op2"].id, "limit": 5},
                       headers=w["headers"]["supervisor"])
    assert {h["call_id"] for h in resp.get_json()["items"]} == {w["c2"].id}
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["paths"]["/calls/search"]["post"]["x-roles"] == ["supervisor", "admin"]
    assert doc["paths"]["/calls/search"]["post"]["requestBody"]["content"]["application/json"]


def test_a_withdrawn_qa_consent_takes_the_call_out_of_the_search(ctx, w):
    from crm.consent import services as consent

    sup = w["users"]["supervisor"]
    for ev in consent.for_citizen(w["c2"].citizen_id):
        if ev.purpose_code == "call_recording_qa":
            consent.withdraw(ev)
    before = _last_seq()
    res = _search(PHRASE, sup)
    assert {h.call_id for h in res.hits} == {w["c1"].id} and res.calls_skipped_no_consent == 2
    assert [e.call_id for e in _entries(before)] == [w["c1"].id]


# --- the phrase stays out of URLs (issue 13, point 2) -----------------------------------------------

def test_the_page_posts_the_phrase_with_csrf_and_refuses_it_in_the_url(ctx, w, login, monkeypatch):
    """What was said on a call (names, addresses, phones) in a URL lands in request logs, proxies and
    the browser's history: the form posts it, and ``GET /calls/search?q=`` is refused, unread."""
    client = login(w["users"]["supervisor"])
    html = client.get("/calls/search", query_string={"speaker": "citizen"}).get_data(as_text=True)
    form = re.search(r'<form[^>]*id="call-search-form"[^>]*>.*?</form>', html, re.S).group(0)
    assert 'method="post"' in form and 'name="csrf_token"' in form and 'name="q"' in form
    assert '<option value="citizen" selected>' in form  # non-personal fields may still prefill from the URL
    before = _last_seq()
    resp = client.get("/calls/search", query_string={"q": "Иванов горячая вода", "speaker": "citizen"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "не передаётся в адресе" in html and 'id="search-result"' not in html
    assert "Иванов" not in html  # not echoed into the form either
    assert _entries(before) == []
    # with CSRF on (as in production) a post without the page's token is refused, one with it searches
    monkeypatch.setitem(ctx.config, "WTF_CSRF_ENABLED", True)
    assert client.post("/calls/search", data={"q": PHRASE}).status_code == 400
    assert _entries(before) == []
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/calls/search").get_data(as_text=True))
    resp = client.post("/calls/search", data={"q": PHRASE, "csrf_token": token.group(1)})
    assert resp.status_code == 200 and 'id="search-hits"' in resp.get_data(as_text=True)
    assert len(_entries(before)) == 2
    # each hit's call (its date), moment and fragment link to the call page, the latter two at the moment
    html = resp.get_data(as_text=True)
    rows = re.findall(r'<tr data-call="([^"]+)">(.*?)</tr>', html, re.S)
    assert rows
    for call_id, cells in rows:
        assert f'class="search-call" href="/calls/{call_id}"' in cells
        assert re.search(rf'class="search-hit" href="/calls/{call_id}#t=[0-9.]+"', cells)
        assert re.search(rf'class="search-fragment" href="/calls/{call_id}#t=[0-9.]+"', cells)


def test_the_api_refuses_the_phrase_in_the_url(ctx, w):
    client = ctx.test_client()
    before = _last_seq()
    resp = client.get("/api/v1/calls/search", query_string={"q": PHRASE}, headers=w["headers"]["supervisor"])
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert error["code"] == "phrase_in_url" and "POST /api/v1/calls/search" in error["message"]
    assert "фраза поиска не принимается" in error["message"]
    resp = client.get("/api/v1/calls/search", query_string={"q": PHRASE, "lang": "en"}, headers=w["headers"]["supervisor"])
    assert resp.status_code == 400 and resp.get_json()["error"]["message"].startswith("the search phrase is not")
    assert _entries(before) == []
    doc = client.get("/api/v1/openapi.json").get_json()
    assert doc["paths"]["/calls/search"]["get"]["deprecated"] is True
    assert "parameters" not in doc["paths"]["/calls/search"]["get"] or not any(
        p["name"] == "q" for p in doc["paths"]["/calls/search"]["get"]["parameters"])
