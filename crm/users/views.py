"""Sign-in in two steps (password, then the second factor), sign-out.

After the password the staff member is **not** signed in: the session holds a pending sign-in
(``PENDING``: user id, session nonce, when, where to go next) for ``CRM_MFA_PENDING_S`` seconds,
which leads to the enrolment page (first sign-in, or after an admin reset) or to the code page.
:func:`_finish_login` is the one place where the sign-in completes (``sessions.start``, which calls
``login_user``). Both steps are throttled
per account and per address (:mod:`crm.users.throttle`): a refused attempt is answered 429."""
from __future__ import annotations

import time

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user

from crm.extensions import limiter
from crm.users import mfa, services, sessions, throttle
from crm.users.forms import LoginForm, ReauthForm, SecondFactorForm
from crm.security.redirects import local_target

bp = Blueprint("users", __name__)

HOME_BY_ROLE = {"operator": "appeals.operator_home", "supervisor": "qa.calls_list", "dpo": "dpo.access_log",
                "admin": "appeals.operator_home", "executor": "appeals.appeal_list"}

#: session key of a sign-in waiting for its second factor
PENDING = "mfa_pending"


@bp.get("/")
def index():
    if not current_user.is_authenticated:
        return redirect(url_for("users.login"))
    return redirect(url_for(HOME_BY_ROLE.get(current_user.role, "users.login")))


def _address() -> str:
    return request.remote_addr or "unknown"


def _throttled(refusal: throttle.Refusal, template: str, **context):
    """The 429 answer to a refused attempt: the page again, saying when to try, and ``Retry-After``."""
    if refusal.scope == "account":
        flash(_("Слишком много неудачных попыток входа в эту учётную запись. Повторите через %(seconds)s с.",
                seconds=refusal.retry_after), "error")
    else:
        flash(_("Слишком много неудачных попыток входа с вашего адреса. Повторите через %(seconds)s с.",
                seconds=refusal.retry_after), "error")
    resp = current_app.make_response((render_template(template, **context), 429))
    resp.headers["Retry-After"] = str(refusal.retry_after)
    return resp


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        session.pop(PENDING, None)
        username = form.username.data.strip()
        account = throttle.account_for("password", username)
        refusal = throttle.check(account, _address())
        if refusal is not None:
            throttle.refused(refusal, username=username, user_id=None, stage="password")
            return _throttled(refusal, "users/login.html", form=form)
        user = services.authenticate(username, form.password.data)
        if user is not None:
            throttle.succeeded(account)
            session[PENDING] = {"uid": user.id, "nonce": user.session_nonce, "at": time.time(),
                                "next": local_target(request.args.get("next"), url_for("users.index"))}
            return redirect(url_for("users.enrol" if not user.mfa_enrolled else "users.second_factor"))
        throttle.failed(account, _address(), username)
        flash(_("Неверный логин или пароль."), "error")
    return render_template("users/login.html", form=form)


def _pending_user():
    """The user of the pending sign-in in this session, or None (none, expired, or revoked)."""
    pending = session.get(PENDING)
    if not isinstance(pending, dict):
        return None
    if time.time() - float(pending.get("at", 0)) > current_app.config["CRM_MFA_PENDING_S"]:
        session.pop(PENDING, None)
        return None
    return services.pending_sign_in(int(pending.get("uid", 0)), str(pending.get("nonce", "")))


def _restart():
    flash(_("Время на ввод кода истекло или вход не начат: введите логин и пароль."), "error")
    return redirect(url_for("users.login"))


def _finish_login(user, method: str) -> str:
    """Sign ``user`` in after both factors; returns where to go next. The only place a sign-in is
    completed: ``sessions.start`` makes the server-side session (and a new CSRF token) and calls
    Flask-Login's ``login_user``."""
    pending = session.pop(PENDING, None) or {}
    throttle.succeeded(throttle.account_for("code", str(user.id)))
    services.complete_sign_in(user, method)
    sessions.start(user)  # a new session (and CSRF token), server-side; Flask-Login's login_user
    return local_target(pending.get("next"), url_for("users.index"))


def _code_attempt(user, template: str, **context):
    """Throttle a code attempt of ``user``: the 429 answer when refused, else None."""
    refusal = throttle.check(throttle.account_for("code", str(user.id)), _address())
    if refusal is None:
        return None
    throttle.refused(refusal, username=user.username, user_id=user.id, stage="code")
    return _throttled(refusal, template, **context)


@bp.route("/login/enrol", methods=["GET", "POST"])
def enrol():
    """First sign-in (or after a reset): the secret as a QR code and as text, confirmed with a code;
    then the recovery codes, shown once."""
    user = _pending_user()
    if user is None:
        return _restart()
    if user.mfa_enrolled:
        return redirect(url_for("users.second_factor"))
    form = SecondFactorForm()
    secret = mfa.enrolment_secret(user)
    page = {"form": form, "secret": secret, "qr": mfa.qr_data_uri(mfa.provisioning_uri(user, secret))}
    if form.validate_on_submit():
        refused = _code_attempt(user, "users/enrol.html", **page)
        if refused is not None:
            return refused
        codes = mfa.confirm_enrolment(user, form.code.data)
        if codes is not None:
            target = _finish_login(user, "enrol")
            return throttle.remember_device(
                current_app.make_response(render_template("users/recovery_codes.html", codes=codes, next_url=target)),
                user.username)
        throttle.failed(throttle.account_for("code", str(user.id)), _address(), user.username)
        flash(_("Код не подошёл. Проверьте время на телефоне и введите новый код из приложения."), "error")
    return render_template("users/enrol.html", **page)


@bp.route("/login/code", methods=["GET", "POST"])
def second_factor():
    """The second step of an enrolled staff member: a code from the app or a recovery code."""
    user = _pending_user()
    if user is None:
        return _restart()
    if not user.mfa_enrolled:
        return redirect(url_for("users.enrol"))
    form = SecondFactorForm()
    if form.validate_on_submit():
        refused = _code_attempt(user, "users/second_factor.html", form=form)
        if refused is not None:
            return refused
        method = mfa.verify(user, form.code.data)
        if method is not None:
            target = _finish_login(user, method)
            if method == "recovery":
                flash(_("Вход по коду восстановления. Осталось кодов: %(n)s.", n=mfa.recovery_codes_left(user)), "info")
            return throttle.remember_device(redirect(target), user.username)
        throttle.failed(throttle.account_for("code", str(user.id)), _address(), user.username)
        flash(_("Неверный или уже использованный код."), "error")
    return render_template("users/second_factor.html", form=form)


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
        user = current_user._get_current_object()
        if services.reauthenticate(user, form.password.data, form.code.data):
            return redirect(target)
        if user.mfa_enrolled:
            form.password.errors.append(_("Неверный пароль или код."))
        else:
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
