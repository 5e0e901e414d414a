"""The supervisors' incident forms."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from crm.incidents.catalog import KINDS, SCOPES, TOPICS
from crm.security.inputs import year_in_range


def _choices(labels: dict[str, str]) -> list[tuple[str, str]]:
    return [(code, _l(label)) for code, label in labels.items()]


class IncidentForm(FlaskForm):
    topic = SelectField(_l("Услуга"), choices=[("", _l("— выберите услугу —")), *_choices(TOPICS)],
                        validators=[DataRequired(message=_l("Выберите услугу"))])
    kind = SelectField(_l("Вид"), choices=_choices(KINDS), default="emergency")
    scope = SelectField(_l("Охват"), choices=_choices(SCOPES), default="buildings")
    addresses = TextAreaField(_l("Дома (по одному адресу в строке)"), validators=[Optional(), Length(max=30000)])
    area = StringField(_l("Улица или район"), validators=[Optional(), Length(max=300)])
    starts_at = DateTimeLocalField(_l("Начало"), format="%Y-%m-%dT%H:%M",
                                   validators=[DataRequired(message=_l("Укажите начало")), year_in_range])
    ends_at = DateTimeLocalField(_l("Плановое окончание"), format="%Y-%m-%dT%H:%M",
                                 validators=[Optional(), year_in_range])
    text = TextAreaField(_l("Текст для операторов (что говорить заявителям)"),
                         validators=[DataRequired(message=_l("Напишите текст для операторов")), Length(max=2000)])


class CloseForm(FlaskForm):
    text = TextAreaField(_l("Текст для заявителей (комментарий к выполненным заявкам)"),
                         validators=[DataRequired(message=_l("Напишите, что сообщить заявителям")),
                                     Length(max=2000)])


class ProposalForm(FlaskForm):
    decision = HiddenField()
    kind = SelectField(_l("Вид"), choices=_choices(KINDS), default="emergency")
    text = TextAreaField(_l("Текст для операторов"), validators=[Optional(), Length(max=2000)])
