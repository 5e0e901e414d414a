from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user

from crm.extensions import limiter
from crm.users import services, sessions
from crm.users.forms import LoginForm, ReauthForm
from crm.security.redirects import local_target

bp = Blueprint("users", __name__)

HOME_BY_ROLE = {"operator": "appeals.operator_home", "supervisor": "qa.calls_list", "dpo": "dpo.access_log",
                "admin": "appeals.operator_home", "executor": "appeals.appeal_list"}


@bp.get("/")
def index():
    if not current_user.is_authenticated:
        return redirect(url_for("users.login"))
    return redirect(url_for(HOME_BY_ROLE.get(current_user.role, "users.login")))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["CRM_LOGIN_LIMIT"], methods=["POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = services.authenticate(form.username.data.strip(), form.password.data)
        if user is not None:
            sessions.start(user)  # a new session (and CSRF token), server-side; Flask-Login's login_user
            return redirect(local_target(request.args.get("next"), url_for("users.index")))
        flash(_("Неверный логин или пароль."), "error")
    return render_template("users/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    services.logout(current_user._get_current_object())
    logout_user()
    session.pop(sessions.SID_KEY, None)
    flash(_("Вы вышли из системы."), "info")
    return redirect(url_for("users.login"))


@bp.route("/reauth", methods=["GET", "POST"])
@login_required
@limiter.limit(lambda: current_app.config["CRM_LOGIN_LIMIT"], methods=["POST"])
def reauth():
    """Type the password again before an export of personal data (crm.users.sessions.fresh_required),
    then go on to ``next``."""
    form = ReauthForm()
    target = local_target(request.args.get("next"), url_for("users.index"))
    if form.validate_on_submit():
        if services.reauthenticate(current_user._get_current_object(), form.password.data):
            return redirect(target)
        form.password.errors.append(_("Неверный пароль."))
    status = 422 if request.method == "POST" else 200
    return render_template("users/reauth.html", form=form, minutes=current_app.config["CRM_REAUTH_MIN"]), status


@bp.get("/account/sessions")
@login_required
def my_sessions():
    """The signed-in user's live sessions (when, from where, which browser); others can be ended."""
    return render_template("users/sessions.html", rows=sessions.live(current_user._get_current_object()),
                           current=sessions.current())


@bp.post("/account/sessions/<session_id>/end")
@login_required
def end_session(session_id):
    """End one of the user's own other sessions (logged ``auth.session_end``)."""
    if sessions.end_one(current_user._get_current_object(), session_id):
        flash(_("Сеанс завершён."), "success")
    else:
        flash(_("Такого сеанса нет или он уже завершён."), "error")
    return redirect(url_for("users.my_sessions"))
