from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from crm.extensions import limiter
from crm.users import services
from crm.users.forms import LoginForm
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
            login_user(user)
            return redirect(local_target(request.args.get("next"), url_for("users.index")))
        flash(_("Неверный логин или пароль."), "error")
    return render_template("users/login.html", form=form)


@bp.post("/logout")
@login_required
def logout():
    services.logout(current_user._get_current_object())
    logout_user()
    flash(_("Вы вышли из системы."), "info")
    return redirect(url_for("users.login"))
