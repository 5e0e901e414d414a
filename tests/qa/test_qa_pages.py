"""QA pages: who may open them, that they work under the CSP (no inline scripts or handlers), the
dashboards' figures, the sampling pages."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from tests.qa.test_qa_world import qa_env  # noqa: F401
from tests.factories import RUDE_SEGMENTS, CallFactory, CitizenFactory
from tests.mfa import sign_in

INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)[^>]*>", re.I)


@pytest.fixture()
def world(ctx, make_user):
    """An operator with a scored and disputed call, a calibration session, a queue item."""
    from crm.qa import services as qa

    op, sup, admin = make_user("operator"), make_user("supervisor"), make_user("admin")
    card = qa.ensure_default_scorecard()
    call = CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True))
    ev = qa.evaluate(call, evaluator=sup, answers={c["code"]: "yes" for c in card.criteria},
                     comment="Хорошо", notes=[{"at_s": 1.0, "text": "Приветствие"}])
    qa.dispute(ev, op, "Не согласна")
    session = qa.create_session(call, creator=sup, participant_ids=[sup.id, admin.id], reference_id=sup.id)
    CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True))
    qa.run_sampling()
    return {"op": op, "sup": sup, "admin": admin, "call": call, "ev": ev, "session": session}


def pages(w) -> dict[str, tuple[str, ...]]:
    """URL → roles that may open it."""
    sv = ("supervisor", "admin")
    return {"/qa/queue": sv, "/qa/calls": sv, "/qa/evaluations": sv, "/qa/dashboard": sv, "/qa/disputes": sv,
            "/qa/scorecard": sv, "/qa/sampling": sv, "/qa/calibration": sv,
            f"/qa/calibration?call_id={w['call'].id}": sv, f"/qa/calibration/{w['session'].id}": sv,
            f"/qa/review/{w['call'].id}": sv, f"/qa/review/{w['call'].id}?session={w['session'].id}": sv,
            f"/qa/evaluations/{w['ev'].id}": sv + ("operator",), "/qa/my": ("operator",),
            f"/calls/{w['call'].id}": sv + ("operator",)}


def test_pages_open_for_their_roles_only_and_follow_the_csp(ctx, world, login):
    problems = []
    for role in ("operator", "supervisor", "admin"):
        client = ctx.test_client()
        sign_in(client, world[{"operator": "op", "supervisor": "sup", "admin": "admin"}[role]])
        for url, roles in pages(world).items():
            resp = client.get(url)
            html = resp.get_data(as_text=True)
            want = 200 if role in roles else 403
            if resp.status_code != want:
                problems.append(f"{role} {url}: {resp.status_code}, wanted {want}")
            if resp.status_code == 200:
                if INLINE_SCRIPT.search(html) or INLINE_HANDLER.search(html):
                    problems.append(f"{role} {url}: inline script or handler")
                if "script-src" not in resp.headers.get("Content-Security-Policy", "") and \
                        "default-src 'self'" not in resp.headers.get("Content-Security-Policy", ""):
                    problems.append(f"{role} {url}: no CSP")
    assert not problems, "\n".join(problems)


def test_review_page_has_the_player_transcript_hints_and_shortcuts(ctx, world, login):
    html = login(world["sup"]).get(f"/qa/review/{world['call'].id}").get_data(as_text=True)
    assert 'id="player"' in html and "/static/call.js" in html and "/static/qa.js" in html
    assert html.count('<li data-start="') == 6 and 'class="spk operator">Оператор:' in html
    assert 'class="spk citizen">Заявитель:' in html
    assert 'id="qa-checks"' in html and 'data-code="greeting"' in html and "Приветствие с названием линии" in html
    assert 'data-player="toggle"' in html and 'id="note-add"' in html and "Клавиши:" in html
    assert "Приветствие" in html and 'href="#t=1.0" data-seek="1.0"' in html  # the pinned note of the evaluation


def test_review_warns_when_the_citizen_has_no_qa_consent(ctx, make_user, login):
    call = CallFactory(operator=make_user("operator"), citizen=CitizenFactory())
    html = login(make_user("supervisor")).get(f"/qa/review/{call.id}").get_data(as_text=True)
    assert "не давал согласия на контроль качества" in html


def test_nav_links(ctx, world, login):
    assert "/qa/my" in login(world["op"]).get("/qa/my").get_data(as_text=True)
    sup_page = login(world["sup"]).get("/qa/queue").get_data(as_text=True)
    assert 'href="/qa/queue"' in sup_page and 'href="/qa/dashboard"' in sup_page


def test_sampling_pages(ctx, make_user, login):
    from crm.qa import services as qa

    sup = make_user("supervisor")
    client = login(sup)
    assert "Случайные звонки" in client.get("/qa/sampling").get_data(as_text=True)
    rule = next(r for r in qa.ensure_rules() if r.kind == "random_per_operator")
    resp = client.post("/qa/sampling", data={"rule_id": rule.id, "active": "yes", "period": "day", "n": "4"})
    assert resp.status_code == 302
    from crm.db import db

    db.session.expire_all()
    assert (rule.period, rule.params["n"], rule.active) == ("day", 4, True)
    bad = client.post("/qa/sampling", data={"rule_id": rule.id, "active": "yes", "period": "year", "n": "4"},
                      follow_redirects=True)
    assert "период" in bad.get_data(as_text=True)

    op = make_user("operator")
    CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True))
    resp = client.post("/qa/queue/sample", data={}, follow_redirects=True)
    assert "В очередь добавлено звонков: 1." in resp.get_data(as_text=True)
    again = client.post("/qa/queue/sample", data={}, follow_redirects=True)
    assert "Новых звонков для проверки нет." in again.get_data(as_text=True)
    assert 'id="start-review"' in client.get("/qa/queue").get_data(as_text=True)


# --- dashboards --------------------------------------------------------------------------------------

def test_dashboard_figures(ctx, make_user, login):
    from crm.db import db
    from crm.qa import services as qa

    a, b, sup = make_user("operator"), make_user("operator"), make_user("supervisor")
    card = qa.ensure_default_scorecard()
    yes = {c["code"]: "yes" for c in card.criteria}
    mon = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # ISO week 2026-W10
    plan = [(a, yes, mon), (a, yes | {"closing": "no"}, mon + timedelta(days=7)),            # 100, 85
            (b, yes | {"greeting": "no", "closing": "no"}, mon),                               # 75
            (b, yes | {"correct_information": "no"}, mon + timedelta(days=1)),                 # 0
            (b, yes | {"closing": "na"}, mon + timedelta(days=8))]                             # 100
    for op, answers, when in plan:
        ev = qa.evaluate(CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True)), evaluator=sup, answers=answers)
        ev.created_at = when
    outside = qa.evaluate(CallFactory(operator=a, citizen=CitizenFactory(qa_consent=True)), evaluator=sup, answers=yes | {"politeness": "no"})
    outside.created_at = mon - timedelta(days=30)
    db.session.commit()

    d = qa.dashboard(mon - timedelta(days=1), mon + timedelta(days=14))
    assert d["total"] == 5 and d["avg"] == 72.0
    ops = {r["operator_id"]: r for r in d["by_operator"]}
    assert (ops[a.id]["count"], ops[a.id]["avg"], ops[a.id]["min"], ops[a.id]["max"]) == (2, 92.5, 85.0, 100.0)
    assert ops[b.id]["avg"] == 58.3 and [t["week"] for t in ops[b.id]["trend"]] == ["2026-W10", "2026-W11"]
    assert d["by_operator"][0]["operator_id"] == b.id  # lowest average first
    crit = {r["code"]: r for r in d["by_criterion"]}
    assert (crit["closing"]["answered"], crit["closing"]["failed"], crit["closing"]["fail_rate"]) == (4, 2, 0.5)
    assert crit["greeting"]["avg_pct"] == 80.0 and crit["politeness"]["failed"] == 0
    assert d["most_failed"][0]["code"] == "closing"
    assert [(t["week"], t["count"], t["avg"]) for t in d["trend"]] == [("2026-W10", 3, 58.3), ("2026-W11", 2, 92.5)]
    assert [b_["count"] for b_ in d["distribution"]] == [1, 0, 0, 0, 0, 0, 0, 1, 1, 2]
    assert qa.dashboard(mon - timedelta(days=1), mon + timedelta(days=14), operator_id=a.id)["total"] == 2

    html = login(sup).get("/qa/dashboard?from=2026-03-01&to=2026-03-15").get_data(as_text=True)
    assert '<strong id="qa-total">5</strong>' in html and '<strong id="qa-avg">72</strong>' in html
    assert "Завершение: срок, номер заявки, прощание — 50 % (2 из 4)" in html
    assert "2026-W11" in html
    narrowed = login(sup).get(f"/qa/dashboard?from=2026-03-01&to=2026-03-15&operator_id={a.id}").get_data(as_text=True)
    assert '<strong id="qa-total">2</strong>' in narrowed


def test_dashboard_shows_how_often_the_automatic_checks_flag_calls(ctx, make_user, login):
    from crm.qa import services as qa

    op = make_user("operator")
    CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True))
    CallFactory(operator=op, segments=RUDE_SEGMENTS, citizen=CitizenFactory(qa_consent=True))
    CallFactory(operator=op, segments=RUDE_SEGMENTS)  # no QA consent: no automatic checks, not counted
    now = datetime.now(timezone.utc)
    d = qa.dashboard(now - timedelta(days=1), now + timedelta(days=1))
    checks = {r["code"]: r for r in d["checks"]}
    assert (checks["greeting"]["total"], checks["greeting"]["failed"]) == (2, 1)
    assert checks["forbidden_phrases"]["fail_rate"] == 0.5
    assert checks["greeting"]["passed"] == 1
    html = login(make_user("supervisor")).get("/qa/dashboard").get_data(as_text=True)
    assert 'id="checks"' in html and "Недопустимые фразы" in html


def test_dashboard_check_columns_use_the_legend_words(ctx, make_user, login):
    """A new user's report: the checks' table headed a column «Отмечено» while the legend of the states
    says «✗ не выполнено». The columns are the legend's three states, the legend shown above them."""
    import re

    op = make_user("operator")
    CallFactory(operator=op, citizen=CitizenFactory(qa_consent=True))
    CallFactory(operator=op, segments=RUDE_SEGMENTS, citizen=CitizenFactory(qa_consent=True))
    html = login(make_user("supervisor")).get("/qa/dashboard").get_data(as_text=True)
    table = html[html.index('<table id="checks">'):]
    table = table[:table.index("</table>")]
    heads = [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<th[^>]*>(.*?)</th>", table)]
    assert heads == ["Проверка", "Звонков", "✓ выполнено", "✗ не выполнено", "? не уверено"]
    assert "Отмечено" not in html and 'id="qa-legend"' in html
    legend = html[html.index('id="qa-legend"'):]
    assert all(w in legend[:legend.index("</p>")] for w in heads[2:])
    row = re.search(r'<tr data-code="greeting">(.*?)</tr>', table).group(1)
    cells = dict(re.findall(r'<td data-state="(\w+)">([^<]*)</td>', row))
    assert (cells["passed"], cells["failed"].split()[0], cells["unsure"]) == ("1", "1", "0")


def test_the_review_queue_is_named_apart_from_the_call_queue_in_the_menu(ctx, make_user):
    """A supervisor's menu had «Очередь звонков» (telephony) beside a bare «Очередь» (QA review): the
    QA one reads «Очередь проверки», as its page title does (English: Review queue)."""
    from tests.clients import SharedContextClient

    web = SharedContextClient(ctx, make_user("supervisor"))
    html = web.get("/telephony/queue").get_data(as_text=True)
    menu = re.search(r'<a href="/qa/[^"]*" id="menu-qa-queue">([^<]*)</a>', html)
    assert menu is not None and menu.group(1) == "Очередь проверки", html[:3000]
    assert ">Очередь</a>" not in html and ">Очередь звонков</a>" in html
    english = web.get("/telephony/queue?lang=en").get_data(as_text=True)
    assert 'id="menu-qa-queue">Review queue</a>' in english
