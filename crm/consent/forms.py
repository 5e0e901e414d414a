"""Forms of the DPO's consent pages and the self-service page."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, HiddenField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from crm.consent.rights import DOCUMENT_TYPES, TYPES, VERIFICATION_METHODS
from crm.consent.services import CHANNELS_RU
from crm.security.inputs import year_in_range

RETENTION_ACTIONS = [("erase", _l("уничтожение")), ("deidentify", _l("обезличивание"))]
DSR_CHANNELS = [(c, CHANNELS_RU[c]) for c in ("paper", "email", "call", "web", "api")]


class PurposeForm(FlaskForm):
    name_ru = StringField(_l("Цель обработки"), validators=[DataRequired(message=_l("Укажите цель")),
                                                            Length(max=200)])
    legal_basis = TextAreaField(_l("Правовое основание"), validators=[DataRequired(message=_l("Укажите основание")),
                                                                 Length(max=2000)])
    requires_consent = BooleanField(_l("Обработка только с согласия заявителя"))
    data_categories = StringField(_l("Категории данных"), validators=[Length(max=300)])
    subjects = StringField(_l("Категории субъектов"), validators=[Length(max=300)])
    actions = TextAreaField(_l("Действия с данными"), validators=[Length(max=2000)])
    processing_method = StringField(_l("Способ обработки"), validators=[Length(max=300)])
    recipients = TextAreaField(_l("Кому передаются (поручение, третьи лица)"), validators=[Length(max=2000)])
    retention_days = IntegerField(_l("Срок хранения, дней"), validators=[
        DataRequired(message=_l("Укажите срок")), NumberRange(1, 36500, message=_l("от 1 до 36 500 дней"))])
    retention_basis = TextAreaField(_l("Откуда срок и от какого события считается"), validators=[Length(max=2000)])
    retention_action = SelectField(_l("По истечении срока"), choices=RETENTION_ACTIONS)


class RequestForm(FlaskForm):
    citizen_id = StringField(_l("Id заявителя"), validators=[DataRequired(message=_l("Укажите id заявителя")),
                                                             Length(max=36)])
    type = SelectField(_l("Вид запроса"), choices=[(k, TYPES[k]) for k in ("access", "stop_processing")])
    purpose = SelectField(_l("Цель обработки (для требования прекратить обработку)"), choices=[],
                          validate_choice=False)
    channel = SelectField(_l("Как получен"), choices=DSR_CHANNELS)
    received_on = DateField(_l("Дата получения"), validators=[Optional(), year_in_range])
    note = TextAreaField(_l("Что просит заявитель (без персональных данных)"), validators=[Length(max=5000)])


class ExtendForm(FlaskForm):
    reason = TextAreaField(_l("Причины продления (мотивированное уведомление заявителю)"),
                           validators=[DataRequired(message=_l("Укажите причины")), Length(max=5000)])


class AnswerForm(FlaskForm):
    decision = HiddenField(default="answer")  # answer | reject | approve
    note = TextAreaField(_l("Ответ заявителю / причина отказа"), validators=[Length(max=5000)])


class VerificationForm(FlaskForm):
    """How the subject of an access request proves their identity (crm.consent.rights.verify_identity)."""

    method = SelectField(_l("Как установлена личность"), choices=list(VERIFICATION_METHODS.items()))
    document = SelectField(_l("Предъявленный документ"), choices=[("", "—"), *DOCUMENT_TYPES.items()],
                           validate_choice=False)
    note = TextAreaField(_l("Примечание (без номера документа)"), validators=[Length(max=2000)])


class ErasureForm(FlaskForm):
    reason = TextAreaField(_l("Основание уничтожения"), validators=[DataRequired(message=_l("Укажите основание")),
                                                               Length(max=5000)])
    channel = SelectField(_l("Как получено требование"), choices=DSR_CHANNELS)


class WithdrawForm(FlaskForm):
    channel = SelectField(_l("Как получен отзыв"), choices=DSR_CHANNELS)
    ref = StringField(_l("Рег. номер письма / скана"), validators=[Length(max=64)])


class RetentionForm(FlaskForm):
    dry_run = BooleanField(_l("Только проверить (ничего не менять)"), default=True)


class PhoneForm(FlaskForm):
    phone = StringField(_l("Номер телефона"),
                        validators=[DataRequired(message=_l("Введите номер телефона")), Length(max=40)])


class CodeForm(FlaskForm):
    code = StringField(_l("Код из SMS"), validators=[DataRequired(message=_l("Введите код из SMS")), Length(max=12)])
