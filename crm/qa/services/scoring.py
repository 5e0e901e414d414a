"""Score arithmetic: parsing answers and pinned notes, the value of an answer, the weighted score
(0–100, a failed critical criterion scores 0)."""
from __future__ import annotations

import math

from crm.i18n import lazy_gettext as _l
from crm.qa.services.common import EvaluationError

MAX_NOTES = 50


# --- score arithmetic ------------------------------------------------------------------------------

def parse_answer(criterion: dict, raw) -> str | int:
    """One answer checked against its criterion: ``"yes"``/``"no"``/``"na"`` for a binary
    criterion; an integer 0..scale_max (given as int or digits) or ``"na"`` for a scale. Raises
    :class:`EvaluationError`."""
    c = criterion
    if raw is None or raw == "":
        raise EvaluationError(_l("нет ответа по критерию «%(criterion)s»", criterion=c['label']), c["code"])
    if isinstance(raw, str):
        raw = raw.strip().lower()
    if raw == "na":
        return "na"
    if (c.get("kind") or "binary") == "scale":
        top = int(c.get("scale_max") or 5)
        value = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
        if isinstance(raw, str) and raw.isdigit():
            value = int(raw)
        if value is None or not 0 <= value <= top:
            raise EvaluationError(_l("по критерию «%(criterion)s» ответ — число от 0 до %(top)s или «н/п»",
                                     criterion=c['label'], top=top), c["code"])
        return value
    if raw not in ("yes", "no"):
        raise EvaluationError(_l("по критерию «%(criterion)s» ответ — да, нет или н/п", criterion=c['label']),
                              c["code"])
    return raw


def answer_value(criterion: dict, answer) -> float | None:
    """An answer as a fraction 0–1 of the criterion's weight (yes 1, no 0, scale value/max);
    None for n/a."""
    if answer == "na" or answer is None:
        return None
    if (criterion.get("kind") or "binary") == "scale":
        return int(answer) / int(criterion.get("scale_max") or 5)
    return 1.0 if answer == "yes" else 0.0


def answer_failed(criterion: dict, answer) -> bool | None:
    """True when the answer fails the criterion (binary: no; scale: below ``pass_min``); None for n/a."""
    if answer == "na" or answer is None:
        return None
    if (criterion.get("kind") or "binary") == "scale":
        top = int(criterion.get("scale_max") or 5)
        pass_min = criterion.get("pass_min")
        return int(answer) < (int(pass_min) if pass_min is not None else math.ceil(top / 2))
    return answer == "no"


def compute_score(criteria: list[dict], answers: dict) -> float:
    """Score 0–100, one decimal: Σ weight × value over the criteria not answered n/a, divided by
    Σ weight of those criteria (n/a leaves the denominator); value is 1 for yes, 0 for no and
    answer / scale_max on a scale. A failed critical criterion (no, or a scale answer below its
    ``pass_min``) makes the whole score 0. All n/a scores 100.

    Raises :class:`EvaluationError` for a missing or invalid answer."""
    total = got = 0.0
    critical_failed = False
    for c in criteria:
        a = parse_answer(c, answers.get(c["code"]))
        value = answer_value(c, a)
        if value is None:
            continue
        if c.get("critical") and answer_failed(c, a):
            critical_failed = True
        w = float(c["weight"])
        total += w
        got += w * value
    if critical_failed:
        return 0.0
    return round(100.0 * got / total, 1) if total else 100.0


def _parse_answers(criteria: list[dict], answers) -> dict:
    if not isinstance(answers, dict):
        raise EvaluationError(_l("ответы — объект «код критерия → ответ»"), "answers")
    return {c["code"]: parse_answer(c, answers.get(c["code"])) for c in criteria}


def _parse_notes(notes, duration_s: float | None) -> list[dict]:
    """``[{at_s, text}]`` → checked, sorted by time. Times are seconds from the start of the call."""
    out = []
    for n in notes or []:
        text = (n.get("text") or "").strip()
        if not text:
            continue
        try:
            at = float(n.get("at_s"))
        except (TypeError, ValueError):
            raise EvaluationError(_l("время комментария — секунды от начала звонка"), "notes") from None
        if at < 0 or (duration_s and at > duration_s + 1) or math.isnan(at):
            raise EvaluationError(_l("время комментария за пределами записи"), "notes")
        out.append({"at_s": round(at, 1), "text": text[:1000]})
    if len(out) > MAX_NOTES:
        raise EvaluationError(_l("не больше %(max)s комментариев к одной оценке", max=MAX_NOTES), "notes")
    return sorted(out, key=lambda n: n["at_s"])


def parse_time(value: str) -> float:
    """``"1:05"``, ``"65"`` or ``"65.5"`` → seconds. Raises :class:`EvaluationError`."""
    value = (value or "").strip().replace(",", ".")
    try:
        if ":" in value:
            m, s = value.split(":", 1)
            return int(m) * 60 + float(s)
        return float(value)
    except ValueError:
        raise EvaluationError(_l("время «%(value)s»: минуты:секунды, например 1:05", value=value[:20]),
                              "notes") from None
