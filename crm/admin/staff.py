"""``/admin/staff``: staff administration for administrators (issue 17 point 4) — the accounts with
their role, state, creation and last sign-in; create an account, disable or enable it, change its
role, reset its password (the temporary password is shown once, in the answer to the POST) or its second
factor, end its sessions; its API tokens with name, expiry and last use, issue one (shown once) or revoke them.

Every change is a POST with the form's CSRF token and is done and logged by :mod:`crm.users.services`.
Double clicks: the buttons are disabled once pressed (``data-submit-once``, crm/static/forms.js); the
changes are idempotent in the services (disabling a disabled account changes nothing), and the three
that make something new — create, reset password, issue token — carry a one-time form key that a
second submission finds already used in Redis (:func:`_first_submission`). Administrators still
cannot read keys (console only, ``crm keys``), edit the access log or open the DPO's pages; the DPO's
accounts are shown but changed on the console only (``crm users …``), and nobody changes their own
role or disables their own account here."""
from __future__ import annotations

import secrets

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from redis import RedisError
from wtforms import HiddenField, IntegerField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from crm import jobs
from crm.i18n import Labels
from crm.security.permissions import ROLE_NAMES_RU, ROLES, roles_required
from crm.users import services as users
from crm.users.services import UserError

bp = Blueprint("staff", __name__, url_prefix="/admin/staff")

#: How long a form key is remembered (seconds): a second submission within it is refused.
FORM_KEY_TTL_S = 3600


def _role_choices():
    """The roles an administrator may give on the page: not the DPO's (console only,
    :data:`crm.users.services.CONSOLE_ONLY_ROLES`)."""
    return [(r, _l(ROLE_NAMES_RU[r])) for r in ROLES if r not in users.CONSOLE_ONLY_ROLES]


def _new_key() -> str:
    return secrets.token_urlsafe(16)


class CreateUserForm(FlaskForm):
    """A new staff account; an empty password means "generate a temporary one"."""

    username = StringField(_l("Логин"), validators=[
        DataRequired(message=_l("Введите логин")), Length(max=80),
        Regexp(r"^[A-Za-z0-9_.@-]+$", message=_l("Логин: латинские буквы, цифры и знаки _ . @ -"))])
    full_name = StringField(_l("ФИО"), validators=[Optional(), Length(max=200)])
    role = SelectField(_l("Роль"), choices=_role_choices)
    executor_id = IntegerField(_l("Исполнитель (номер в справочнике; только для роли «исполнитель»)"),
                               validators=[Optional()])
    password = PasswordField(_l("Пароль (пусто — будет создан временный)"), validators=[Optional(), Length(max=200)])
    form_key = HiddenField(default=_new_key)


class RoleForm(FlaskForm):
    role = SelectField(_l("Роль"), choices=_role_choices)
    executor_id = IntegerField(_l("Исполнитель (номер в справочнике; только для роли «исполнитель»)"),
                               validators=[Optional()])


class TokenForm(FlaskForm):
    name = StringField(_l("Название (для чего токен: АТС, IVR …)"), validators=[Optional(), Length(max=100)])
    expires_days = IntegerField(_l("Срок действия, дней (пусто — бессрочно)"),
                                validators=[Optional(), NumberRange(min=1, max=users.TOKEN_MAX_DAYS)])
    form_key = HiddenField(default=_new_key)


class KeyedForm(FlaskForm):
    """A button that makes something new (a temporary password): CSRF token and a one-time key."""

    form_key = HiddenField(default=_new_key)


class ButtonForm(FlaskForm):
    """A button: the CSRF token only."""


def _first_submission(form_key: str | None) -> bool:
    """True the first time ``form_key`` is submitted (remembered in Redis for
    :data:`FORM_KEY_TTL_S`); False for a repeat. A form without a key, or Redis being down, lets the
    submission through: a repeat then does the change twice, which loses nothing."""
    if not form_key:
        return True
    key = f"{current_app.config['CRM_QUEUE_PREFIX']}crm:staff-form:{form_key[:64]}"
    try:
        return bool(jobs.redis_connection().set(key, "1", nx=True, ex=FORM_KEY_TTL_S))
    except RedisError:
        current_app.logger.warning("staff form key not checked: Redis unavailable")
        return True


def _user_or_404(user_id: int):
    user = users.get(user_id)
    if user is None:
        abort(404)
    return user


def _repeat_flash() -> None:
    flash(_("Форма уже была отправлена (повторное нажатие): действие выполнено один раз. Если пароль или "
            "токен не был показан, создайте новый."), "error")


@bp.route("", methods=["GET", "POST"])
@roles_required("admin")
def staff_list():
    """The staff accounts and the creation form (POST creates; a generated password is shown once)."""
    form = CreateUserForm()
    status = 200
    if form.is_submitted():
        valid = form.validate()
        if valid and form.role.data == "executor" and form.executor_id.data is None:
            form.executor_id.errors.append(_("Для роли «исполнитель» укажите исполнителя из справочника."))
            valid = False
        if valid:
            if not _first_submission(form.form_key.data):
                _repeat_flash()
                return redirect(url_for("staff.staff_list"))
            generated = not form.password.data
            password = form.password.data or secrets.token_urlsafe(12)
            try:
                user = users.create_user(form.username.data.strip(), form.role.data, password, form.full_name.data or "",
                                         executor_id=form.executor_id.data, actor=current_user._get_current_object())
            except UserError as exc:
                form.username.errors.append(str(exc))
            else:
                flash(_("Учётная запись %(username)s создана.", username=user.username), "success")
                if generated:
                    return _user_page(user, secret={"kind": "password", "value": password})
                return redirect(url_for("staff.staff_user", user_id=user.id))
        status = 422
        form.form_key.data = _new_key()
    return render_template("admin/staff.html", form=form, staff=users.list_users(),
                           roles=Labels(ROLE_NAMES_RU)), status


def _user_page(user, secret: dict | None = None, role_form: RoleForm | None = None,
               token_form: TokenForm | None = None, status: int = 200):
    """The account's page; ``secret`` (``{"kind": "password"|"token", "value"}``) is shown once."""
    role_form = role_form or RoleForm(formdata=None, role=user.role, executor_id=user.executor_id)
    token_form = token_form or TokenForm(formdata=None)
    return render_template("admin/staff_user.html", user=user, tokens=users.tokens_of(user), secret=secret,
                           console_only=user.role in users.CONSOLE_ONLY_ROLES,
                           role_form=role_form, token_form=token_form, button=ButtonForm(formdata=None),
                           keyed=KeyedForm(formdata=None), roles=Labels(ROLE_NAMES_RU),
                           expired=users.token_expired), status


@bp.get("/<int:user_id>")
@roles_required("admin")
def staff_user(user_id: int):
    """One account: its state, role, tokens, and the buttons that change them."""
    return _user_page(_user_or_404(user_id))


def _button(user_id: int, action, done: str, unchanged: str | None = None):
    """Run ``action(user, actor) -> bool|None`` for a plain button and go back to the account's page."""
    user = _user_or_404(user_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    try:
        changed = action(user, current_user._get_current_object())
    except UserError as exc:
        flash(str(exc), "error")
    else:
        flash(done if changed is not False or unchanged is None else unchanged, "success" if changed is not False else "info")
    return redirect(url_for("staff.staff_user", user_id=user.id))


@bp.post("/<int:user_id>/disable")
@roles_required("admin")
def staff_disable(user_id: int):
    return _button(user_id, users.disable_user, _("Учётная запись отключена, её сеансы завершены."),
                   _("Учётная запись уже отключена."))


@bp.post("/<int:user_id>/enable")
@roles_required("admin")
def staff_enable(user_id: int):
    return _button(user_id, users.enable_user, _("Учётная запись включена."), _("Учётная запись уже включена."))


@bp.post("/<int:user_id>/end-sessions")
@roles_required("admin")
def staff_end_sessions(user_id: int):
    return _button(user_id, users.end_sessions, _("Все сеансы пользователя завершены."))


@bp.post("/<int:user_id>/reset-2fa")
@roles_required("admin")
def staff_reset_second_factor(user_id: int):
    """Reset the account's second factor (a lost phone): it is set up again at the next sign-in."""
    return _button(user_id, users.reset_second_factor,
                   _("Второй фактор сброшен, сеансы завершены: при следующем входе сотрудник настроит его заново."))


@bp.post("/<int:user_id>/revoke-tokens")
@roles_required("admin")
def staff_revoke_tokens(user_id: int):
    return _button(user_id, lambda u, a: users.revoke_tokens(u, a) and None, _("Все токены пользователя отозваны."))


@bp.post("/<int:user_id>/role")
@roles_required("admin")
def staff_role(user_id: int):
    user = _user_or_404(user_id)
    form = RoleForm()
    if form.validate_on_submit():
        try:
            changed = users.change_role(user, form.role.data, current_user._get_current_object(),
                                        executor_id=form.executor_id.data)
        except UserError as exc:
            flash(str(exc), "error")  # a flash: the role form is not shown for one's own or the DPO's account
        else:
            flash(_("Роль изменена, сеансы пользователя завершены.") if changed else _("Роль не изменилась."),
                  "success" if changed else "info")
            return redirect(url_for("staff.staff_user", user_id=user.id))
    return _user_page(user, role_form=form, status=422)


@bp.post("/<int:user_id>/reset-password")
@roles_required("admin")
def staff_reset_password(user_id: int):
    user = _user_or_404(user_id)
    form = KeyedForm()
    if not form.validate_on_submit():
        abort(400)
    if not _first_submission(form.form_key.data):
        _repeat_flash()
        return redirect(url_for("staff.staff_user", user_id=user.id))
    try:
        password = users.reset_password(user, current_user._get_current_object())
    except UserError as exc:
        flash(str(exc), "error")
        return redirect(url_for("staff.staff_user", user_id=user.id))
    flash(_("Пароль сброшен, сеансы пользователя завершены."), "success")
    return _user_page(user, secret={"kind": "password", "value": password})


@bp.post("/<int:user_id>/tokens")
@roles_required("admin")
def staff_issue_token(user_id: int):
    user = _user_or_404(user_id)
    form = TokenForm()
    if form.validate_on_submit():
        if not _first_submission(form.form_key.data):
            _repeat_flash()
            return redirect(url_for("staff.staff_user", user_id=user.id))
        try:
            token = users.issue_token(user, name=form.name.data or "", expires_days=form.expires_days.data,
                                      actor=current_user._get_current_object())
        except UserError as exc:
            form.name.errors.append(str(exc))
        else:
            flash(_("Токен выпущен."), "success")
            return _user_page(user, secret={"kind": "token", "value": token})
    form.form_key.data = _new_key()
    return _user_page(user, token_form=form, status=422)


@bp.post("/<int:user_id>/tokens/<int:token_id>/revoke")
@roles_required("admin")
def staff_revoke_token(user_id: int, token_id: int):
    user = _user_or_404(user_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    if token_id not in {t.id for t in users.tokens_of(user)}:
        abort(404)
    users.revoke_token(token_id, current_user._get_current_object())
    flash(_("Токен отозван."), "success")
    return redirect(url_for("staff.staff_user", user_id=user.id))
