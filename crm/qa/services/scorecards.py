"""Versioned scorecards: sections and weighted criteria (binary or scale), the default card, and
saving a new version when the form changes."""
from __future__ import annotations

import math

from crm.db import atomic, db
from crm.i18n import N_, lazy_gettext as _l
from crm.qa.models import Scorecard
from crm.qa.services.common import EvaluationError

DEFAULT_FAMILY = "default"
DEFAULT_SECTIONS = [{"code": "opening", "title": "Начало разговора"},
                    {"code": "handling", "title": "Работа с обращением"},
                    {"code": "closing", "title": "Завершение"}]
DEFAULT_CRITERIA = [
    {"code": "greeting", "label": "Приветствие: линия и имя оператора", "weight": 10, "critical": False,
     "section": "opening", "kind": "binary"},
    {"code": "problem_identified", "label": "Суть проблемы и адрес выяснены", "weight": 25, "critical": False,
     "section": "handling", "kind": "binary"},
    {"code": "correct_information", "label": "Информация верна, заявка оформлена правильно", "weight": 30,
     "critical": True, "section": "handling", "kind": "binary"},
    {"code": "politeness", "label": "Вежливость, без недопустимых фраз", "weight": 20, "critical": False,
     "section": "handling", "kind": "binary"},
    {"code": "closing", "label": "Завершение: срок, номер заявки, прощание", "weight": 15, "critical": False,
     "section": "closing", "kind": "binary"},
]
ANSWERS = ("yes", "no", "na")
ANSWERS_RU = {"yes": N_("да"), "no": N_("нет"), "na": N_("н/п")}
KINDS = {"binary": N_("да / нет / н/п"), "scale": N_("шкала")}
MAX_SCALE = 10


# --- scorecards ------------------------------------------------------------------------------------

def criteria_of(card: Scorecard) -> list[dict]:
    """The criteria of ``card`` normalised: ``{code, label, weight (float > 0), critical (bool),
    section, kind ("binary"|"scale"), scale_max (int, scale only), pass_min (int, scale only:
    the lowest passing answer)}``. Rows made before sections existed read as binary criteria of
    section ``main``."""
    out = []
    for c in card.criteria or []:
        kind = c.get("kind") or "binary"
        item = {"code": c["code"], "label": c["label"], "weight": float(c.get("weight") or 0),
                "critical": bool(c.get("critical")), "section": c.get("section") or "main", "kind": kind}
        if kind == "scale":
            item["scale_max"] = int(c.get("scale_max") or 5)
            item["pass_min"] = int(c["pass_min"]) if c.get("pass_min") is not None else math.ceil(item["scale_max"] / 2)
        out.append(item)
    return out


def sections_of(card: Scorecard) -> list[dict]:
    """``[{code, title, criteria: [...]}]`` in display order; criteria of an undeclared section
    are shown under a section of their own."""
    crits = criteria_of(card)
    declared = list(card.sections or [])
    known = {s["code"] for s in declared}
    for c in crits:
        if c["section"] not in known:
            declared.append({"code": c["section"], "title": "Критерии" if c["section"] == "main" else c["section"]})
            known.add(c["section"])
    return [{**s, "criteria": [c for c in crits if c["section"] == s["code"]]} for s in declared
            if any(c["section"] == s["code"] for c in crits)]


def ensure_default_scorecard() -> Scorecard:
    """The active scorecard, creating the built-in one when none exists."""
    card = active_scorecard()
    if card is None:
        card = Scorecard(family=DEFAULT_FAMILY, name="Базовая форма оценки звонка", version=1,
                         sections=DEFAULT_SECTIONS, criteria=DEFAULT_CRITERIA, active=True)
        db.session.add(card)
        db.session.commit()
    return card


def active_scorecard(family: str | None = None) -> Scorecard | None:
    """The newest active scorecard version (of ``family`` when given)."""
    q = db.select(Scorecard).where(Scorecard.active.is_(True))
    if family:
        q = q.where(Scorecard.family == family)
    return db.session.execute(q.order_by(Scorecard.id.desc()).limit(1)).scalar_one_or_none()


def get_scorecard(scorecard_id: int) -> Scorecard | None:
    return db.session.get(Scorecard, scorecard_id)


def versions(family: str = DEFAULT_FAMILY) -> list[Scorecard]:
    """Every version of ``family``, newest first."""
    return list(db.session.execute(db.select(Scorecard).where(Scorecard.family == family)
                                   .order_by(Scorecard.version.desc())).scalars())


def validate_scorecard(name: str, sections: list[dict], criteria: list[dict]) -> tuple[list[dict], list[dict]]:
    """Check and normalise a scorecard definition; returns ``(sections, criteria)``.

    ``sections``: ``[{code, title}]``; ``criteria``: ``[{code, label, weight, critical, section,
    kind, scale_max?, pass_min?}]``. Codes are latin letters, digits and ``_``; weights > 0;
    a scale runs 0..``scale_max`` (1–10) with ``pass_min`` ≤ ``scale_max``. Raises
    :class:`EvaluationError` naming the first problem."""
    import re

    if not (name or "").strip():
        raise EvaluationError(_l("укажите название формы"), "name")
    if not criteria:
        raise EvaluationError(_l("в форме должен быть хотя бы один критерий"), "criteria")
    codes = set()
    out_sections = []
    for s in sections:
        title = (s.get("title") or "").strip()
        code = s.get("code") or ""
        if not title:
            raise EvaluationError(_l("у раздела нет названия"), "sections")
        out_sections.append({"code": code, "title": title[:120]})
    section_codes = {s["code"] for s in out_sections}
    out = []
    for c in criteria:
        code = (c.get("code") or "").strip()
        label = (c.get("label") or "").strip()
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", code):
            raise EvaluationError(_l("код критерия «%(code)s»: латинские строчные буквы, цифры и _, до 40 знаков",
                                     code=code), "code")
        if code in codes:
            raise EvaluationError(_l("код критерия «%(code)s» повторяется", code=code), "code")
        codes.add(code)
        if not label:
            raise EvaluationError(_l("у критерия «%(code)s» нет формулировки", code=code), "label")
        try:
            weight = float(c.get("weight"))
        except (TypeError, ValueError):
            raise EvaluationError(_l("вес критерия «%(label)s» должен быть числом", label=label), "weight") from None
        if not (0 < weight <= 1000):
            raise EvaluationError(_l("вес критерия «%(label)s» должен быть больше 0 и не больше 1000", label=label),
                                  "weight")
        kind = c.get("kind") or "binary"
        if kind not in KINDS:
            raise EvaluationError(_l("неизвестный тип критерия «%(kind)s»", kind=kind), "kind")
        section = c.get("section") or (out_sections[0]["code"] if out_sections else "main")
        if out_sections and section not in section_codes:
            raise EvaluationError(_l("критерий «%(label)s»: неизвестный раздел", label=label), "section")
        item = {"code": code, "label": label[:300], "weight": int(weight) if weight.is_integer() else weight,
                "critical": bool(c.get("critical")), "section": section, "kind": kind}
        if kind == "scale":
            try:
                top = int(c.get("scale_max") or 5)
                pass_min = int(c["pass_min"]) if c.get("pass_min") not in (None, "") else math.ceil(top / 2)
            except (TypeError, ValueError):
                raise EvaluationError(_l("шкала критерия «%(label)s» должна быть целым числом", label=label),
                                      "scale_max") from None
            if not (1 <= top <= MAX_SCALE):
                raise EvaluationError(_l("шкала критерия «%(label)s»: от 0 до 1…%(max)s",
                                         label=label, max=MAX_SCALE), "scale_max")
            if not (0 <= pass_min <= top):
                raise EvaluationError(_l("проходной балл критерия «%(label)s» должен быть от 0 до %(top)s",
                                         label=label, top=top), "pass_min")
            item["scale_max"], item["pass_min"] = top, pass_min
        out.append(item)
    if out_sections:
        used = {c["section"] for c in out}
        out_sections = [s for s in out_sections if s["code"] in used]
    return out_sections, out


@atomic
def save_scorecard(*, name: str, sections: list[dict], criteria: list[dict], user=None,
                   family: str = DEFAULT_FAMILY) -> tuple[Scorecard, bool]:
    """Save an edited scorecard as a new version of ``family`` and make it the active one; older
    versions stay for the evaluations made on them. Returns ``(card, created)``: an unchanged
    definition creates nothing and returns the active version. Raises :class:`EvaluationError`."""
    sections, criteria = validate_scorecard(name, sections, criteria)
    current = active_scorecard(family)
    if current is not None and current.name == name.strip() and criteria_of(current) == criteria_of(
            Scorecard(criteria=criteria)) and (current.sections or []) == sections:
        return current, False
    last = db.session.execute(db.select(db.func.max(Scorecard.version)).where(Scorecard.family == family)).scalar()
    for old in db.session.execute(db.select(Scorecard).where(Scorecard.family == family,
                                                             Scorecard.active.is_(True))).scalars():
        old.active = False
    card = Scorecard(family=family, name=name.strip()[:120], version=(last or 0) + 1, sections=sections,
                     criteria=criteria, active=True, created_by=getattr(user, "id", None))
    db.session.add(card)
    db.session.commit()
    return card, True
