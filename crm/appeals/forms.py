from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, FloatField, HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, ValidationError

from crm.appeals.catalog import CATEGORIES, CHANNELS, STATUSES, TOPICS


def _choices(labels: dict[str, str]) -> list[tuple[str, str]]:
    """``(code, label)`` pairs of a catalogue dict, the labels translated when shown."""
    return [(code, _l(label)) for code, label in labels.items()]


CONSENT_CHOICES = [("yes", _l("согласен")), ("no", _l("не согласен")), ("unknown", _l("не спрашивали"))]


def parse_moment(value: str | None) -> float | None:
    """Seconds from ``м:сс`` (``1:05``), ``ч:мм:сс`` or plain seconds (``65``, ``65,5``); None for
    empty. Raises ValueError for anything else or a negative moment."""
    value = (value or "").strip().replace(",", ".")
    if not value:
        return None
    parts = value.split(":")
    if len(parts) > 3 or any(not p.strip() for p in parts):
        raise ValueError(value)
    seconds = 0.0
    for p in parts[:-1]:
        if not p.strip().isdigit():
            raise ValueError(value)
        seconds = seconds * 60 + int(p)
    last = float(parts[-1])
    if last < 0 or (len(parts) > 1 and last >= 60):
        raise ValueError(value)
    return seconds * 60 + last if len(parts) > 1 else last


#: The answer to a malformed moment in a recording (the form's validator and the attach buttons).
MOMENT_FORMAT_RU = _l("Укажите момент в записи как мм:сс, например 1:05")


class MomentError(ValueError):
    """A moment in a recording that :func:`parse_moment` cannot read; the message is
    :data:`MOMENT_FORMAT_RU`."""


def consent_moment(form) -> float | None:
    """Seconds of the form's ``consent_at`` for the forms sent without the full form's validation
    (the attach buttons); None when empty. Raises :class:`MomentError` for a malformed one."""
    try:
        return parse_moment(form.consent_at.data)
    except ValueError:
        raise MomentError(MOMENT_FORMAT_RU) from None


def _moment(form, field) -> None:
    try:
        field.seconds = parse_moment(field.data)
    except ValueError:
        field.seconds = None
        raise ValidationError(MOMENT_FORMAT_RU) from None


class PhoneSearchForm(FlaskForm):
    """The operator's citizen search: sent by POST (CSRF-protected), so the number never appears in a
    URL (request logs, browser history, proxies)."""

    phone = StringField(_l("Телефон заявителя"), validators=[DataRequired(message=_l("Введите номер")), Length(max=40)])
    # the reference of the telephony call the intake was opened from (a screen pop), kept through the search
    call_ref = HiddenField()


class CitizenForm(FlaskForm):
    """The operator's new-citizen form. ``submission_key`` makes a double-clicked form register one
    citizen; ``confirm_duplicate`` (shown under the warning that the phone already belongs to other
    citizens) registers anyway, for the number in ``confirmed_phone`` (the one the warning was about)."""

    submission_key = HiddenField()
    confirmed_phone = HiddenField()
    call_ref = HiddenField()  # the screen pop's call reference, handed on to the appeal form
    confirm_duplicate = BooleanField(_l("Всё равно зарегистрировать нового заявителя"))
    full_name = StringField(_l("ФИО"), validators=[DataRequired(message=_l("Укажите ФИО")), Length(max=200)])
    phone = StringField(_l("Телефон"), validators=[DataRequired(message=_l("Укажите телефон")), Length(max=40)])
    email = StringField(_l("Эл. почта"), validators=[Optional(), Length(max=200)])
    address = StringField(_l("Адрес (улица, дом)"), validators=[Optional(), Length(max=300)])
    apartment = StringField(_l("Квартира"), validators=[Optional(), Length(max=20)])


class AppealForm(FlaskForm):
    submission_key = HiddenField()
    # the reference of the telephony call this intake was opened from (the screen pop): the appeal is linked to
    # that call even when sent after the hang-up; opaque here, checked by crm.telephony (appeal.registered)
    call_ref = HiddenField()
    # no preselected value: a forgotten category would otherwise default to «Аварийная» and its deadlines
    category = SelectField(_l("Категория"), choices=[("", _l("— выберите категорию —")), *_choices(CATEGORIES)],
                           validators=[DataRequired(message=_l("Выберите категорию обращения"))])
    topic = SelectField(_l("Тематика"), choices=[("", _l("— выберите тематику —")), *_choices(TOPICS)],
                        validators=[DataRequired(message=_l("Выберите тематику обращения"))])
    channel = SelectField(_l("Канал"), choices=_choices(CHANNELS), default="phone")
    # the buildings register: the script (static/buildings.js) fills building_id from the suggestions;
    # without it the typed address is matched on the server (crm.buildings.services.find)
    building = StringField(_l("Дом (из реестра домов)"), validators=[Optional(), Length(max=300)])
    building_id = HiddenField()
    # the earlier appeal the operator linked this one to as a repeat (the repeat candidates' button)
    repeat_of_id = HiddenField()
    # the caller's recording the telephony already stored: attached instead of hunting for a file
    call_id = SelectField(_l("Запись из телефонии"), choices=[("", "")], validate_choice=True, default="")
    description = TextAreaField(_l("Суть обращения"), validators=[DataRequired(message=_l("Опишите суть обращения")),
                                                              Length(max=10000)])
    recording = FileField(_l("Запись звонка (WAV, MP3, OGG, FLAC)"))
    consent_sms = RadioField(_l("Согласие на SMS-уведомления"), choices=CONSENT_CHOICES, default="unknown")
    consent_email = RadioField(_l("Согласие на уведомления по эл. почте"), choices=CONSENT_CHOICES, default="unknown")
    consent_recording = RadioField(_l("Согласие на запись для контроля качества"), choices=CONSENT_CHOICES,
                                   default="unknown")
    # the evidence of the answers: the moment in the attached recording where the citizen gave them
    consent_at = StringField(_l("Момент ответов о согласии в записи (мм:сс)"),
                             validators=[Optional(), Length(max=12), _moment])


VISIBILITY_CHOICES = [("internal", _l("только для сотрудников")), ("citizen", _l("и для заявителя"))]


class TransitionForm(FlaskForm):
    """A step of the lifecycle. ``expected_status``: the status the page showed; a page that no longer
    shows the current status (another operator moved the appeal, or a double click) is refused."""

    expected_status = HiddenField()
    to_status = SelectField(_l("Новый статус"), choices=_choices(STATUSES))
    comment = TextAreaField(_l("Комментарий"), validators=[Optional(), Length(max=5000)])
    visibility = SelectField(_l("Комментарий виден"), choices=VISIBILITY_CHOICES, default="internal")


class CommentForm(FlaskForm):
    """A comment without a change of status (:func:`crm.appeals.services.add_comment`)."""

    text = TextAreaField(_l("Текст комментария"),
                         validators=[DataRequired(message=_l("Напишите комментарий")), Length(min=3, max=5000)])
    visibility = SelectField(_l("Комментарий виден"), choices=VISIBILITY_CHOICES, default="internal")


class DuplicateForm(FlaskForm):
    """Close the appeal as a duplicate of another (by its number), optionally merging it into it."""

    expected_status = HiddenField()
    original_number = StringField(_l("Номер исходного обращения"),
                                  validators=[DataRequired(message=_l("Укажите номер исходного обращения")),
                                              Length(max=20)])
    merge = BooleanField(_l("Объединить: перенести звонки и комментарии в исходное обращение"))
    comment = TextAreaField(_l("Комментарий (для сотрудников)"), validators=[Optional(), Length(max=5000)])


class RecordingForm(FlaskForm):
    recording = FileField(_l("Запись звонка"), validators=[DataRequired(message=_l("Выберите файл"))])


class QuickConsentForm(FlaskForm):
    """The operator's one click during a call: purpose and answer; the call and moment optional."""

    purpose = HiddenField(validators=[DataRequired()])
    given = HiddenField(default="yes")
    call_id = HiddenField()
    offset_s = FloatField(validators=[Optional(), NumberRange(min=0)])
