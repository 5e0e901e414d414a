"""Forms of the QA pages. Lists of rows (pinned comments, scorecard criteria) are read from
``request.form.getlist`` by the views; these classes carry the CSRF token and the fixed fields."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from crm.qa.services import ANSWERS_RU, criteria_of


def answer_choices(criterion: dict) -> list[tuple[str, str]]:
    """Radio choices of one criterion: да / нет / н/п, or 0..scale_max and н/п."""
    if criterion.get("kind") == "scale":
        return [(str(i), str(i)) for i in range(int(criterion["scale_max"]) + 1)] + [("na", ANSWERS_RU["na"])]
    return list(ANSWERS_RU.items())


def answer_label(criterion: dict, answer) -> str:
    """An answer as shown to people (да / нет / н/п, or ``3 из 5``)."""
    if answer is None:
        return "—"
    if answer == "na" or criterion.get("kind") != "scale":
        return ANSWERS_RU.get(answer, str(answer))
    return f"{answer} из {criterion['scale_max']}"


class EvaluationForm(FlaskForm):
    comment = TextAreaField("Комментарий", validators=[Optional(), Length(max=5000)])

    @classmethod
    def for_scorecard(cls, card, formdata=None, data: dict | None = None):
        """A form class with one radio field per criterion (``c_<code>``) of ``card``; binary
        criteria default to «да», scales to their top mark. ``data``: answers to preselect."""
        class F(cls):
            pass
        for c in criteria_of(card):
            default = str(c["scale_max"]) if c["kind"] == "scale" else "yes"
            if data and c["code"] in data:
                default = str(data[c["code"]])
            setattr(F, f"c_{c['code']}", RadioField(c["label"] + (" (критичный)" if c["critical"] else ""),
                                                  choices=answer_choices(c), default=default))
        return F(formdata=formdata) if formdata is not None else F()

    def answers(self, card) -> dict:
        return {c["code"]: getattr(self, f"c_{c['code']}").data for c in criteria_of(card)}


class DisputeForm(FlaskForm):
    reason = TextAreaField("С чем вы не согласны", validators=[DataRequired("Объясните, с чем вы не согласны."),
                                                              Length(max=2000)])


class ResolveForm(FlaskForm):
    outcome = SelectField("Решение", choices=[("upheld", "Оставить оценку"), ("changed", "Изменить оценку")])
    comment = TextAreaField("Ответ оператору", validators=[Optional(), Length(max=2000)])


class ScorecardForm(FlaskForm):
    name = StringField("Название формы", validators=[DataRequired("Укажите название."), Length(max=120)])


class SamplingRunForm(FlaskForm):
    day = DateField("День периода", validators=[Optional()])


class CalibrationForm(FlaskForm):
    title = StringField("Название", validators=[Optional(), Length(max=200)])
