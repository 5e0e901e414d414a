from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, FloatField, HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from crm.appeals.catalog import CATEGORIES, CHANNELS, STATUSES, TOPICS

CONSENT_CHOICES = [("yes", "согласен"), ("no", "не согласен"), ("unknown", "не спрашивали")]


class PhoneSearchForm(FlaskForm):
    """The operator's citizen search: sent by POST (CSRF-protected), so the number never appears in a
    URL (request logs, browser history, proxies)."""

    phone = StringField("Телефон заявителя", validators=[DataRequired(message="Введите номер"), Length(max=40)])


class CitizenForm(FlaskForm):
    """The operator's new-citizen form. ``submission_key`` makes a double-clicked form register one
    citizen; ``confirm_duplicate`` (shown under the warning that the phone already belongs to other
    citizens) registers anyway, for the number in ``confirmed_phone`` (the one the warning was about)."""

    submission_key = HiddenField()
    confirmed_phone = HiddenField()
    confirm_duplicate = BooleanField("Всё равно зарегистрировать нового заявителя")
    full_name = StringField("ФИО", validators=[DataRequired(message="Укажите ФИО"), Length(max=200)])
    phone = StringField("Телефон", validators=[DataRequired(message="Укажите телефон"), Length(max=40)])
    email = StringField("Эл. почта", validators=[Optional(), Length(max=200)])
    address = StringField("Адрес (улица, дом)", validators=[Optional(), Length(max=300)])
    apartment = StringField("Квартира", validators=[Optional(), Length(max=20)])


class AppealForm(FlaskForm):
    submission_key = HiddenField()
    # no preselected value: a forgotten category would otherwise default to «Аварийная» and its deadlines
    category = SelectField("Категория", choices=[("", "— выберите категорию —"), *CATEGORIES.items()],
                           validators=[DataRequired(message="Выберите категорию обращения")])
    topic = SelectField("Тематика", choices=[("", "— выберите тематику —"), *TOPICS.items()],
                        validators=[DataRequired(message="Выберите тематику обращения")])
    channel = SelectField("Канал", choices=list(CHANNELS.items()), default="phone")
    description = TextAreaField("Суть обращения", validators=[DataRequired(message="Опишите суть обращения"),
                                                              Length(max=10000)])
    recording = FileField("Запись звонка (WAV, MP3, OGG, FLAC)")
    consent_sms = RadioField("Согласие на SMS-уведомления", choices=CONSENT_CHOICES, default="unknown")
    consent_recording = RadioField("Согласие на запись для контроля качества", choices=CONSENT_CHOICES,
                                   default="unknown")


class TransitionForm(FlaskForm):
    to_status = SelectField("Новый статус", choices=list(STATUSES.items()))
    comment = TextAreaField("Комментарий", validators=[Optional(), Length(max=5000)])


class RecordingForm(FlaskForm):
    recording = FileField("Запись звонка", validators=[DataRequired(message="Выберите файл")])


class QuickConsentForm(FlaskForm):
    """The operator's one click during a call: purpose and answer; the call and moment optional."""

    purpose = HiddenField(validators=[DataRequired()])
    given = HiddenField(default="yes")
    call_id = HiddenField()
    offset_s = FloatField(validators=[Optional(), NumberRange(min=0)])
