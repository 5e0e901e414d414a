"""Score arithmetic and scorecard validation: weights, n/a, critical criteria, scales. Pure
functions of ``crm.qa.services``; no app, no database."""
from __future__ import annotations

import pytest

from crm.qa.models import Scorecard
from crm.qa.services import (DEFAULT_CRITERIA, EvaluationError, answer_failed, compute_score, criteria_of, parse_answer,
                             parse_time, sections_of, validate_scorecard)

CARD = [
    {"code": "a", "label": "А", "weight": 10, "critical": False, "kind": "binary"},
    {"code": "b", "label": "Б", "weight": 30, "critical": False, "kind": "binary"},
    {"code": "c", "label": "В", "weight": 60, "critical": True, "kind": "binary"},
]
SCALE = [
    {"code": "tone", "label": "Тон", "weight": 20, "critical": False, "kind": "scale", "scale_max": 5},
    {"code": "facts", "label": "Факты", "weight": 30, "critical": True, "kind": "scale", "scale_max": 4, "pass_min": 2},
    {"code": "hello", "label": "Привет", "weight": 50, "critical": False, "kind": "binary"},
]


def test_weights():
    assert compute_score(CARD, {"a": "yes", "b": "yes", "c": "yes"}) == 100.0
    assert compute_score(CARD, {"a": "no", "b": "yes", "c": "yes"}) == 90.0
    assert compute_score(CARD, {"a": "no", "b": "no", "c": "yes"}) == 60.0


def test_na_leaves_the_denominator():
    # a is n/a: 30 + 60 = 90 counted, b no → 60 / 90
    assert compute_score(CARD, {"a": "na", "b": "no", "c": "yes"}) == round(100 * 60 / 90, 1) == 66.7
    assert compute_score(CARD, {"a": "na", "b": "na", "c": "na"}) == 100.0  # nothing to judge


def test_a_failed_critical_criterion_zeroes_everything():
    assert compute_score(CARD, {"a": "yes", "b": "yes", "c": "no"}) == 0.0
    assert compute_score(CARD, {"a": "yes", "b": "yes", "c": "na"}) == 100.0  # n/a is no failure


def test_scale_counts_as_a_fraction_of_its_weight():
    # tone 3/5 of 20 = 12, facts 4/4 of 30 = 30, hello yes 50 → 92 of 100
    assert compute_score(SCALE, {"tone": 3, "facts": "4", "hello": "yes"}) == 92.0
    assert compute_score(SCALE, {"tone": "0", "facts": 2, "hello": "no"}) == 15.0  # 0 + 15 + 0
    assert compute_score(SCALE, {"tone": "na", "facts": 4, "hello": "yes"}) == 100.0


def test_a_critical_scale_below_its_pass_mark_zeroes_everything():
    assert compute_score(SCALE, {"tone": 5, "facts": 1, "hello": "yes"}) == 0.0
    assert compute_score(SCALE, {"tone": 5, "facts": 2, "hello": "yes"}) == 85.0
    assert answer_failed(SCALE[0], 2) is True and answer_failed(SCALE[0], 3) is False  # default mark: ⌈5/2⌉
    assert answer_failed(SCALE[0], "na") is None


@pytest.mark.parametrize("criterion, raw", [
    (CARD[0], "maybe"), (CARD[0], 1), (CARD[0], None), (CARD[0], ""),
    (SCALE[0], 6), (SCALE[0], "-1"), (SCALE[0], "yes"), (SCALE[0], True), (SCALE[0], "2.5"),
])
def test_invalid_answers_are_refused_naming_the_criterion(criterion, raw):
    with pytest.raises(EvaluationError) as e:
        parse_answer(criterion, raw)
    assert e.value.field == criterion["code"] and criterion["label"] in str(e.value)


def test_missing_answer_is_refused():
    with pytest.raises(EvaluationError, match="нет ответа"):
        compute_score(CARD, {"a": "yes", "b": "yes"})


def test_answers_are_normalised():
    assert parse_answer(CARD[0], " YES ") == "yes"
    assert parse_answer(SCALE[0], "4") == 4 and parse_answer(SCALE[0], "NA") == "na"


def test_the_default_scorecard_gives_85_without_the_closing():
    crit = criteria_of(Scorecard(criteria=DEFAULT_CRITERIA))
    answers = {c["code"]: "yes" for c in crit} | {"closing": "no"}
    assert compute_score(crit, answers) == 85.0
    assert compute_score(crit, answers | {"correct_information": "no"}) == 0.0


def test_old_rows_without_sections_read_as_binary_criteria_of_one_section():
    card = Scorecard(criteria=[{"code": "x", "label": "Икс", "weight": 5, "critical": False}])
    assert criteria_of(card) == [{"code": "x", "label": "Икс", "weight": 5.0, "critical": False, "section": "main",
                                  "kind": "binary"}]
    assert [s["code"] for s in sections_of(card)] == ["main"]


def test_sections_keep_their_order_and_drop_empty_ones():
    card = Scorecard(sections=[{"code": "s1", "title": "Начало"}, {"code": "s2", "title": "Пусто"},
                               {"code": "s3", "title": "Конец"}],
                     criteria=[{"code": "b", "label": "Б", "weight": 1, "section": "s3"},
                               {"code": "a", "label": "А", "weight": 1, "section": "s1"}])
    assert [(s["title"], [c["code"] for c in s["criteria"]]) for s in sections_of(card)] == [
        ("Начало", ["a"]), ("Конец", ["b"])]


def test_validate_scorecard():
    sections, crit = validate_scorecard("Форма", [{"code": "s1", "title": " Раздел "}], [
        {"code": "tone", "label": "Тон", "weight": "20", "kind": "scale", "scale_max": "5", "section": "s1"},
        {"code": "facts", "label": "Факты", "weight": 2.5, "critical": True, "section": "s1"}])
    assert sections == [{"code": "s1", "title": "Раздел"}]
    assert crit[0] == {"code": "tone", "label": "Тон", "weight": 20, "critical": False, "section": "s1", "kind": "scale",
                       "scale_max": 5, "pass_min": 3}
    assert crit[1]["weight"] == 2.5 and crit[1]["kind"] == "binary"


@pytest.mark.parametrize("criteria, field", [
    ([], "criteria"),
    ([{"code": "Bad Code", "label": "x", "weight": 1}], "code"),
    ([{"code": "a", "label": "x", "weight": 1}, {"code": "a", "label": "y", "weight": 1}], "code"),
    ([{"code": "a", "label": "", "weight": 1}], "label"),
    ([{"code": "a", "label": "x", "weight": 0}], "weight"),
    ([{"code": "a", "label": "x", "weight": "много"}], "weight"),
    ([{"code": "a", "label": "x", "weight": 1, "kind": "stars"}], "kind"),
    ([{"code": "a", "label": "x", "weight": 1, "kind": "scale", "scale_max": 11}], "scale_max"),
    ([{"code": "a", "label": "x", "weight": 1, "kind": "scale", "scale_max": 3, "pass_min": 4}], "pass_min"),
])
def test_validate_scorecard_refuses(criteria, field):
    with pytest.raises(EvaluationError) as e:
        validate_scorecard("Форма", [], criteria)
    assert e.value.field == field


@pytest.mark.parametrize("text, seconds", [("1:05", 65.0), ("65", 65.0), ("0:07.5", 7.5), ("12,5", 12.5)])
def test_parse_time(text, seconds):
    assert parse_time(text) == seconds


def test_parse_time_refuses_nonsense():
    with pytest.raises(EvaluationError):
        parse_time("вчера")
