"""The survey form of the public CSAT page."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from crm.csat.services import MAX_COMMENT

YES_NO = [("yes", _l("Да")), ("no", _l("Нет"))]
# the choices are checked by crm.csat.services.checked, whose messages are Russian (validate_choice=False)


class SurveyForm(FlaskForm):
    solved = RadioField(_l("Проблема решена?"), choices=YES_NO, validate_choice=False,
                        validators=[DataRequired(message=_l("Ответьте, решена ли проблема."))])
    score = RadioField(_l("Оцените работу по заявке от 1 до 5"), choices=[(str(n), str(n)) for n in range(1, 6)],
                       validate_choice=False, validators=[DataRequired(message=_l("Поставьте оценку от 1 до 5."))])
    first_time = RadioField(_l("Вы обращались по этой проблеме впервые?"), choices=YES_NO, validate_choice=False,
                            validators=[Optional()])
    comment = TextAreaField(_l("Комментарий (необязательно)"), validators=[
        Optional(), Length(max=MAX_COMMENT, message=_l("Комментарий длиннее %(max)d символов."))])
