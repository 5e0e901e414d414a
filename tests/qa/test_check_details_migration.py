"""Migration 0043 rewrites the automatic QA check details stored before 49c845b, which quoted the
transcript's words (a name after «меня зовут», the recogniser's «операто рано», a mono call's
citizen), into the form the checks write since: the configured phrase, «оператор …», or «…».

Old-form rows are written as the previous version stored them (its sentences, with the words it
quoted); new-form rows are stored by the product itself (a transcribed call's ``call.transcribed``
hook). The migration runs through Alembic (this revision alone, from 0042: later revisions are only
stamped; on PostgreSQL or SQLite as the suite runs), twice."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm.db import db
from tests.factories import CallFactory, CitizenFactory

PREVIOUS = "0042_staff_second_factor"
REVISION = "0043_qa_check_details_unquoted"
MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "versions" / f"{REVISION}.py"

SCRIPT_TAIL = "; по сценарию не сказана строка 1 сценария «Приветствие»: Назовите номер заявки"
#: (code, detail as stored before 49c845b, the detail expected after the migration)
OLD_FORM = [
    ("greeting", "приветствие «здравствуйте» и представление «горячая линия», «меня зовут ковальчук» в первые 20 с"
     + SCRIPT_TAIL,
     "приветствие «здравствуйте» и представление «горячая линия», «меня зовут …» в первые 20 с" + SCRIPT_TAIL),
    ("greeting", "представление «операто рано» есть, но нет приветствия в первые 20 с",  # a fuzzy match, garbled
     "представление «оператор …» есть, но нет приветствия в первые 20 с"),
    ("greeting", "приветствие «доброго дня» есть, но оператор не назвал своё имя",  # a word form
     "приветствие «добрый день» есть, но оператор не назвал своё имя"),
    ("closing", "прощание «до свиданья» на 41.0 с; распознано неуверенно (вероятность 0.30) — прослушайте запись",
     "прощание «до свидания» на 41.0 с; распознано неуверенно (вероятность 0.30) — прослушайте запись"),
    ("address", "оператор уточнил адрес («улицу») на 12.0 с", "оператор уточнил адрес («улица») на 12.0 с"),
    ("callback_number", "оператор уточнил телефон для связи («перезвоню») на 30.0 с",
     "оператор уточнил телефон для связи («перезвонить») на 30.0 с"),
    ("forbidden_phrases", "недопустимые фразы: «не знаю» на 3.0 с; «успокойтесь» на 9.5 с",  # already as configured
     "недопустимые фразы: «не знаю» на 3.0 с; «успокойтесь» на 9.5 с"),
]
#: words of the old quotes that no detail may hold afterwards
QUOTED = ("ковальчук", "операто ", "рано", "доброго дня", "свиданья", "улицу", "перезвоню")


@pytest.fixture()
def no_transcription(monkeypatch):
    from crm.calls import services as calls

    monkeypatch.setattr(calls, "enqueue_transcription", lambda call, **kw: None)


def _migration():
    spec = importlib.util.spec_from_file_location("m0043", MIGRATION)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run_alembic() -> None:
    """This revision alone through Alembic: the version table set back to the one before it
    (``stamp``), upgraded to it, and set to the head again."""
    from flask_migrate import stamp, upgrade

    db.session.commit()
    db.session.remove()  # (SQLite: no transaction of ours may hold the write lock)
    stamp(revision=PREVIOUS)
    upgrade(revision=REVISION)
    stamp(revision="heads")


def _details() -> dict[int, tuple[str, str, str]]:
    """``{row id: (call id, code, detail)}`` of every stored check result, read raw."""
    rows = db.session.execute(sa.text("SELECT id, call_id, code, detail FROM qa_check_results")).all()
    db.session.commit()
    return {r.id: (r.call_id, r.code, r.detail) for r in rows}


def _store_old(make_call, rows: list[tuple[str, str]]) -> list[int]:
    """Check results as the previous version stored them, ``rows``: ``[(code, detail)]``, on calls
    made by ``make_call()`` (untranscribed-for-QA calls: one result per call and code, so a new call
    whenever a code comes again); their ids in order."""
    from crm.qa.models import CheckResult

    made, call, used = [], None, set()
    for code, detail in rows:
        if call is None or code in used:
            call, used = make_call(), set()
        used.add(code)
        made.append(CheckResult(call_id=call.id, code=code, passed=True, state="passed", detail=detail))
    db.session.add_all(made)
    db.session.commit()
    return [r.id for r in made]


def test_old_details_lose_the_transcripts_words_and_new_ones_stay(ctx, make_user, recordings, no_transcription):
    op = make_user("operator")
    citizen = CitizenFactory(qa_consent=True)
    # new form, stored by the product: GOOD_SEGMENTS greet with «оператор Анна», a mono call with a name
    stored_now = CallFactory(operator=op, citizen=citizen)
    mono = CallFactory(operator=op, citizen=citizen, segments=[
        {"start": 0.5, "end": 4.5, "speaker": "unknown", "channel": 0,
         "text": "Горячая линия ЖКХ, здравствуйте, меня зовут Ковальчук Зинаида, у меня течёт крыша."},
        {"start": 5.0, "end": 8.5, "speaker": "unknown", "channel": 0,
         "text": "Адрес улица Перекопская, квартира девять, телефон для связи прежний."},
        {"start": 14.0, "end": 16.0, "speaker": "unknown", "channel": 0, "text": "Всего доброго, Зинаида Петровна."}])
    new_form = _details()
    assert {call for call, _, _ in new_form.values()} == {stored_now.id, mono.id}
    assert any("«оператор …»" in d for _, _, d in new_form.values())
    assert any("«меня зовут …»" in d for _, _, d in new_form.values())
    # old form: a call whose results were stored before 49c845b, and a timing check's sentence
    old_calls = []

    def old_call():
        old_calls.append(CallFactory(operator=op, citizen=citizen, checks=False))
        return old_calls[-1]
    old_ids = _store_old(old_call, [(code, before) for code, before, _ in OLD_FORM]
                         + [("silence", "пауза 12.0 с на 40.0 с")])
    call_ids = {stored_now.id, mono.id} | {c.id for c in old_calls}
    assert any(word in d for _, _, d in _details().values() for word in QUOTED), "the old form quotes them"

    _run_alembic()

    after = _details()
    assert {i: after[i] for i in new_form} == new_form, "new-form details untouched"
    assert [after[i][2] for i in old_ids] == [expected for _, _, expected in OLD_FORM] + ["пауза 12.0 с на 40.0 с"]
    assert not [d for _, _, d in after.values() for word in QUOTED if word in d.lower()]
    assert {call for call, _, _ in after.values()} == call_ids and len(after) == len(new_form) + len(old_ids)

    # a second run changes nothing: through the module's function (counts) and through Alembic
    db.session.remove()
    with db.engine.begin() as conn:
        counts = _migration().rewrite(conn, ctx.config.get("CRM_QA_CHECKS"))
    assert counts["rewritten"] == 0 and counts["read"] >= len(OLD_FORM)
    _run_alembic()
    assert _details() == after


def test_the_instances_configuration_decides_what_a_phrase_is(ctx, make_user, recordings, no_transcription,
                                                             monkeypatch):
    """``CRM_QA_CHECKS`` as the app reads it: a configured phrase of this instance stays, old words
    are named by this instance's phrases, and words no configured phrase matches any more become «…»."""
    monkeypatch.setitem(ctx.config, "CRM_QA_CHECKS", {
        "address": {"phrases": ["номер дома", "улица"]},
        "greeting": {"greetings": ["здравствуйте"], "operator_names": ["на связи"]}})
    op = make_user("operator")
    citizen = CitizenFactory(qa_consent=True)
    stored_now = CallFactory(operator=op, citizen=citizen, segments=[
        {"start": 0.3, "end": 4.0, "speaker": "operator", "channel": 0,
         "text": "Здравствуйте, горячая линия, на связи Анна."},
        {"start": 4.5, "end": 9.0, "speaker": "operator", "channel": 0, "text": "Скажите номер дома, пожалуйста."}])
    new_form = _details()
    details = {code: d for _, code, d in new_form.values()}
    assert "«номер дома»" in details["address"] and "«на связи …»" in details["greeting"]
    old_ids = _store_old(lambda: CallFactory(operator=op, citizen=citizen, checks=False), [
        ("address", "оператор уточнил адрес («проспекту») на 3.0 с"),  # a default phrase this instance dropped
        ("address", "оператор уточнил адрес («улицей») на 3.0 с"),
        ("greeting", "приветствие «здравствуйте» и представление «горячая линия», «на связи анна» в первые 20 с"),
        ("greeting", "приветствие «добрый день» есть, но оператор не назвал своё имя")])  # not configured here

    _run_alembic()

    after = _details()
    assert {i: after[i] for i in new_form} == new_form
    assert [after[i][2] for i in old_ids] == [
        "оператор уточнил адрес («…») на 3.0 с",
        "оператор уточнил адрес («улица») на 3.0 с",
        "приветствие «здравствуйте» и представление «горячая линия», «на связи …» в первые 20 с",
        "приветствие «…» есть, но оператор не назвал своё имя"]
