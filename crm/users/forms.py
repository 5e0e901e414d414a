from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    username = StringField(_l("Логин"), validators=[DataRequired(message=_l("Введите логин")), Length(max=80)])
    password = PasswordField(_l("Пароль"), validators=[DataRequired(message=_l("Введите пароль")), Length(max=200)])


class ReauthForm(FlaskForm):
    password = PasswordField(_l("Пароль"), validators=[DataRequired(message=_l("Введите пароль")), Length(max=200)])
    #: the second factor's code (required by the service when the account has one)
    code = StringField(_l("Код"), validators=[Length(max=64)])


class SecondFactorForm(FlaskForm):
    """The second sign-in step: a 6-digit code from the authenticator app, or a recovery code."""

    code = StringField(_l("Код"), validators=[DataRequired(message=_l("Введите код")), Length(max=64)])
