"""The QA review page in headless Chromium, under the app's real CSP: clicking a transcript line
seeks the audio, the played line is highlighted, the keyboard shortcuts play/pause, skip ±5 s,
pin a comment at the current moment and go to the next call of the queue.

The recording is the simulated two-party hot-water call; its transcript is stored from the
reference turns (no Whisper here), as the transcription job would store it."""
from __future__ import annotations

import json
import re
import secrets
from pathlib import Path

import pytest
from tests.factories import AppealFactory, CallFactory, CitizenFactory

if not Path("/usr/bin/chromium").exists():
    pytest.skip("/usr/bin/chromium is missing: install Debian's chromium to run the browser tests",
                allow_module_level=True)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
NAME = "dev_call_01_hot_water"


def call_files() -> tuple[bytes, dict]:
    """``(stereo WAV bytes, reference JSON)`` from the project's test data, else ../shared."""
    for folder in (ROOT / "tests" / "data" / "audio" / "calls", ROOT / "tests" / "data" / "audio" / "speech-ru" / "calls",
                   ROOT.parent / "shared" / "data" / "speech-ru" / "calls"):
        wav, ref = folder / f"{NAME}.stereo8k.wav", folder / f"{NAME}.json"
        if wav.is_file() and ref.is_file():
            return wav.read_bytes(), json.loads(ref.read_text(encoding="utf-8"))
    pytest.skip(f"{NAME} is not in tests/data/audio nor in ../shared/data/speech-ru/calls")


def stored_call(operator, wav: bytes, ref: dict, citizen_n: int) -> str:
    """A consented citizen's call with the recording, the reference transcript and the checks stored."""
    citizen = CitizenFactory(phone=f"+7 912 345-67-{citizen_n:02d}", qa_consent=True)
    appeal = AppealFactory(citizen=citizen, operator=operator, category="emergency", topic="hot_water",
                           description="Нет горячей воды")
    segments = [{"start": t["start"], "end": t["end"], "speaker": ref["channels"][str(t["channel"])],
                 "channel": t["channel"], "text": t["text"]} for t in ref["turns"]]
    call = CallFactory(appeal=appeal, operator=operator, audio=wav, original_name=f"{NAME}.wav", segments=segments,
                       duration_s=ref["duration_s"])
    return call.id


def player_time(page) -> float:
    return page.evaluate("document.getElementById('player').currentTime")


@pytest.mark.browser
def test_review_page_player_transcript_and_shortcuts(ctx, make_user, new_page, sign_in, shots_dir):
    from crm import jobs
    from crm.db import db
    from crm.qa import services as qa
    from crm.qa.models import Evaluation

    wav, ref = call_files()  # stored in the instance folder the live server shares
    op = make_user("operator")
    username = f"sv_{secrets.token_hex(3)}"
    supervisor = make_user("supervisor", username=username)
    call_ids = [stored_call(op, wav, ref, n) for n in (1, 2)]
    for r in qa.ensure_rules():
        qa.update_rule(r.id, active=r.kind == "random_per_operator", period="week",
                       n=5 if r.kind == "random_per_operator" else None, codes=(r.params or {}).get("codes"))
    qa.run_sampling()
    order = [it.call_id for it in qa.queue_for(supervisor)]
    assert sorted(order) == sorted(call_ids)
    db.session.remove()  # hold no transaction (on SQLite: no write lock) while the live server works

    page = new_page()
    sign_in(page, username)
    page.goto(f"/qa/review/{order[0]}")
    assert page.locator("#call-status").get_attribute("data-status") == "done"
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    lines = page.locator("#transcript li[data-start]")
    assert lines.count() == len(ref["turns"])
    text = page.locator("#transcript").inner_text()
    assert "Оператор:" in text and "Заявитель:" in text
    assert page.locator("#qa-checks li.ok[data-code=greeting]").count() == 1

    # click a line at least 15 s in: the player jumps there (not playback from 0) and the line lights up
    starts = [float(s) for s in lines.evaluate_all("els => els.map(e => e.dataset.start)")]
    pick = next(i for i, s in enumerate(starts) if s >= 15.0)
    lines.nth(pick).click()
    page.wait_for_function("([s]) => Math.abs(document.getElementById('player').currentTime - s) < 1.0",
                           arg=[starts[pick]], timeout=5_000)
    page.wait_for_function("([i]) => document.querySelectorAll('#transcript li[data-start]')[i]"
                           ".classList.contains('current')", arg=[pick], timeout=5_000)

    # keyboard: K pauses, L skips forward 5 s, J back 5 s, Space plays again
    page.locator("h1").click()  # focus outside the form
    page.keyboard.press("k")
    page.wait_for_function("document.getElementById('player').paused")
    before = player_time(page)
    page.keyboard.press("l")
    assert player_time(page) == pytest.approx(before + 5, abs=0.3)
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert player_time(page) == pytest.approx(before - 5, abs=0.3)
    page.keyboard.press("ArrowRight")
    assert player_time(page) == pytest.approx(before, abs=0.3)
    page.keyboard.press(" ")
    page.wait_for_function("!document.getElementById('player').paused", timeout=5_000)
    page.keyboard.press("k")
    page.wait_for_function("document.getElementById('player').paused")

    # typing in a field is not a shortcut
    page.locator("#score-form textarea[name=comment]").fill("ll")
    assert player_time(page) == pytest.approx(before, abs=0.5)

    # M pins a comment at the current moment
    page.locator("h1").click()
    page.evaluate("document.getElementById('player').currentTime = 23.6")
    page.keyboard.press("m")
    note_at = page.locator("#notes input[name=note_at]").first
    assert note_at.input_value() == "0:23"
    page.keyboard.type("Уточнила телефон")
    page.screenshot(path=str(shots_dir / "qa-review.png"), full_page=True)

    # N goes to the next call of the queue
    page.locator("h1").click()
    page.keyboard.press("n")
    page.wait_for_url(re.compile(rf"/qa/review/{order[1]}$"))
    page.goto(f"/qa/review/{order[0]}")  # a fresh page: the comment typed above was not saved
    page.wait_for_function("document.getElementById('player').readyState >= 1")

    # saving the evaluation (with the pinned comment) goes on to the next call
    page.evaluate("document.getElementById('player').currentTime = 23.6")
    page.locator("h1").click()
    page.keyboard.press("m")
    page.keyboard.type("Уточнила телефон")
    assert page.locator("#score-form input[type=radio]:checked").count() == 0  # nothing preselected
    for radio in page.locator("#score-form input[type=radio][value=yes]").all():
        radio.check()
    page.locator("#score-form input[name=c_closing][value=no]").check()
    page.get_by_role("button", name=re.compile("Сохранить оценку")).click()
    page.wait_for_url(re.compile(rf"/qa/review/{order[1]}$"))
    assert any("Оценка сохранена: 85 из 100." in t for t in page.locator(".flash").all_inner_texts())
    assert not page.crm_problems, page.crm_problems  # no CSP violations, no failed requests

    ev = db.session.execute(db.select(Evaluation).where(Evaluation.call_id == order[0])).scalar_one()
    assert ev.score == 85.0 and [(n["at_s"], n["text"]) for n in ev.notes] == [(23.0, "Уточнила телефон")]
    db.session.remove()
    for q in jobs.QUEUES:
        jobs.queue(q).empty()


@pytest.mark.browser
def test_scorecard_editor_adds_a_scale_criterion_as_a_new_version(ctx, make_user, new_page, sign_in, shots_dir):
    from crm.db import db
    from crm.qa import services as qa

    username = f"adm_{secrets.token_hex(3)}"
    make_user("admin", username=username)
    qa.ensure_default_scorecard()
    db.session.remove()

    page = sign_in(new_page(), username)
    page.goto("/qa/scorecard")
    rows = page.locator("#criteria tr.row-item")
    assert rows.count() == 6  # five criteria and one blank row
    page.get_by_role("button", name="Добавить критерий").click()
    assert rows.count() == 7
    new = rows.nth(6)
    new.get_by_label("Код").fill("empathy")
    new.get_by_label("Формулировка").fill("Сочувствие заявителю")
    new.get_by_label("Тип").select_option("scale")
    new.get_by_label("Шкала до").fill("5")
    new.get_by_label("Вес").fill("10")
    rows.nth(1).get_by_role("button", name="убрать").click()  # drop «problem_identified»
    page.get_by_role("button", name="Сохранить новую версию").click()
    page.wait_for_load_state()
    assert any("Сохранена версия 2 формы." in t for t in page.locator(".flash").all_inner_texts())
    page.screenshot(path=str(shots_dir / "qa-scorecard.png"), full_page=True)
    assert not page.crm_problems, page.crm_problems

    card = qa.active_scorecard()
    codes = [c["code"] for c in qa.criteria_of(card)]
    assert card.version == 2 and "empathy" in codes and "problem_identified" not in codes
    assert next(c for c in qa.criteria_of(card) if c["code"] == "empathy")["scale_max"] == 5
    db.session.remove()


@pytest.mark.browser
def test_doubtful_word_seeks_and_the_citizens_data_are_masked(ctx, make_user, new_page, sign_in):
    """Issue 18: a word Whisper heard at 0.3 is underlined on the review page and a click plays the
    recording from it; the citizen's address and phone are masked for the supervisor."""
    from crm.db import db

    wav, ref = call_files()
    op = make_user("operator")
    username = f"sv_{secrets.token_hex(3)}"
    make_user("supervisor", username=username)
    citizen = CitizenFactory(phone="+7 912 345-67-70", qa_consent=True)
    appeal = AppealFactory(citizen=citizen, operator=op, category="emergency", topic="hot_water",
                           description="Нет горячей воды")
    segments = []
    doubtful_at = None
    for k, t in enumerate(ref["turns"]):
        said = t["text"].split()
        step = (t["end"] - t["start"]) / len(said)
        words = [{"start": round(t["start"] + i * step, 3), "end": round(t["start"] + (i + 1) * step, 3), "word": w,
                  "probability": 0.9} for i, w in enumerate(said)]
        if k == 2:  # «Назовите, пожалуйста, ваш адрес.»: «пожалуйста,» heard at 0.3
            words[1]["probability"] = 0.3
            doubtful_at = words[1]["start"]
        segments.append({"start": t["start"], "end": t["end"], "speaker": ref["channels"][str(t["channel"])],
                         "channel": t["channel"], "text": t["text"], "words": words})
    call_id = CallFactory(appeal=appeal, operator=op, audio=wav, original_name=f"{NAME}.wav", segments=segments,
                          duration_s=ref["duration_s"]).id
    db.session.remove()

    page = new_page()
    sign_in(page, username)
    page.goto(f"/qa/review/{call_id}")
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    text = page.locator("#transcript").inner_text()
    assert "[адрес]" in text and "[телефон]" in text and "Садовая" not in text
    unsure = page.locator("#transcript .word-unsure")
    assert unsure.count() == 1 and unsure.inner_text() == "пожалуйста"  # the word, not the comma Whisper attached
    assert unsure.get_attribute("title") == "неуверенно распознано, прослушайте"
    unsure.click()
    page.wait_for_function(f"Math.abs(document.getElementById('player').currentTime - {doubtful_at}) < 0.6")
    assert abs(player_time(page) - doubtful_at) < 0.6
