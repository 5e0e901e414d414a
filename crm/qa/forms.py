"""Forms of the QA pages. Lists of rows (pinned comments, scorecard criteria) are read from
``request.form.getlist`` by the views; these classes carry the CSRF token and the fixed fields."""
from __future__ import annotations

from flask_babel import gettext as _, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from crm.qa.services import ANSWERS_RU, criteria_of
from crm.security.inputs import year_in_range


def answer_choices(criterion: dict) -> list[tuple[str, str]]:
    """Radio choices of one criterion: да / нет / н/п, or 0..scale_max and н/п."""
    if criterion.get("kind") == "scale":
        return [(str(i), str(i)) for i in range(int(criterion["scale_max"]) + 1)] + [("na", _(ANSWERS_RU["na"]))]
    return [(code, _(label)) for code, label in ANSWERS_RU.items()]


def answer_label(criterion: dict, answer) -> str:
    """An answer as shown to people (да / нет / н/п, or ``3 из 5``)."""
    if answer is None:
        return "—"
    if answer == "na" or criterion.get("kind") != "scale":
        return _(ANSWERS_RU[answer]) if answer in ANSWERS_RU else str(answer)
    return _("%(answer)s из %(scale_max)s", answer=answer, scale_max=criterion["scale_max"])


class EvaluationForm(FlaskForm):
    comment = TextAreaField(_l("Комментарий"), validators=[Optional(), Length(max=5000)])

    @classmethod
    def for_scorecard(cls, card, formdata=None, data: dict | None = None):
        """A form class with one radio field per criterion (``c_<code>``) of ``card``. Nothing is
        preselected (a default «да» would let one click score 100 whatever the call was like):
        every criterion must be answered. ``data``: answers to preselect (an evaluation being
        changed, one's own calibration answers)."""
        class F(cls):
            pass
        F._criteria = criteria_of(card)
        for c in F._criteria:
            default = str(data[c["code"]]) if data and data.get(c["code"]) is not None else None
            setattr(F, f"c_{c['code']}", RadioField((_("%(label)s (критичный)", label=c["label"]) if c["critical"] else c["label"]),
                                                  choices=answer_choices(c), default=default,
                                                  validate_choice=False))
        return F(formdata=formdata) if formdata is not None else F()

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        self.unanswered = []
        for c in getattr(self, "_criteria", ()):
            field = getattr(self, f"c_{c['code']}")
            if field.data not in {value for value, _ in field.choices}:
                field.errors = list(field.errors) + [_("Выберите ответ.")]
                self.unanswered.append(c["label"])
        return ok and not self.unanswered

    def error_message(self, failed: str | None = None) -> str:
        """One sentence naming what is wrong (the unanswered criteria first), starting with ``failed``
        (default «Оценка не сохранена»)."""
        failed = failed or _("Оценка не сохранена")
        unanswered = getattr(self, "unanswered", [])
        if unanswered:
            names = ", ".join(f"«{label}»" for label in unanswered)
            return (_("%(failed)s: не отмечен ответ по критериям %(names)s.", failed=failed, names=names)
                    if len(unanswered) > 1
                    else _("%(failed)s: не отмечен ответ по критерию %(names)s.", failed=failed, names=names))
        if self.comment.errors:
            return _("%(failed)s: комментарий длиннее 5000 знаков.", failed=failed)
        return _("%(failed)s: проверьте форму.", failed=failed)

    def answers(self, card) -> dict:
        return {c["code"]: getattr(self, f"c_{c['code']}").data for c in criteria_of(card)}


class DisputeForm(FlaskForm):
    reason = TextAreaField(_l("С чем вы не согласны"), validators=[DataRequired(_l("Объясните, с чем вы не согласны.")),
                                                              Length(max=2000)])


class ResolveForm(FlaskForm):
    outcome = SelectField(_l("Решение"), choices=[("upheld", _l("Оставить оценку")), ("changed", _l("Изменить оценку"))])
    comment = TextAreaField(_l("Ответ оператору"), validators=[Optional(), Length(max=2000)])


class ScorecardForm(FlaskForm):
    name = StringField(_l("Название формы"), validators=[DataRequired(_l("Укажите название.")), Length(max=120)])


class SamplingRunForm(FlaskForm):
    day = DateField(_l("День периода"), validators=[Optional(), year_in_range])


class CalibrationForm(FlaskForm):
    title = StringField(_l("Название"), validators=[Optional(), Length(max=200)])
