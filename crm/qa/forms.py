from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import RadioField, TextAreaField
from wtforms.validators import Length, Optional

from crm.qa.services import ANSWERS_RU


class EvaluationForm(FlaskForm):
    comment = TextAreaField("Комментарий", validators=[Optional(), Length(max=5000)])

    @classmethod
    def for_scorecard(cls, card, formdata=None):
        """A form class with one radio field per criterion (``c_<code>``) of ``card``."""
        class F(cls):
            pass
        for c in card.criteria:
            setattr(F, f"c_{c['code']}", RadioField(c["label"] + (" (критичный)" if c.get("critical") else ""),
                                                  choices=list(ANSWERS_RU.items()), default="yes"))
        return F(formdata=formdata) if formdata is not None else F()
