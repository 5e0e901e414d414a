"""Pages of the consent package.

- :data:`bp` — the self-service link sent by SMS; the ``crm consent retention`` command. The DPO's
  pages (register of purposes, data subject requests, consent history, erasure, destruction acts,
  retention runs, the SMS outbox) are in :mod:`crm.dpo.views`.
- :data:`public_bp` — the citizen's self-service page under ``/my`` (Russian, phone-sized): in by
  a signed link or an SMS code, then withdraw consents with one button each.

Views parse input, call one service and render; services check roles again and write the log.
"""
from __future__ import annotations

import time

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user

from crm.consent import retention, rights, selfservice, services
from crm.consent.forms import CodeForm, PhoneForm
from crm.extensions import limiter
from crm.i18n import Labels
from crm.security import audit
from crm.security.permissions import PermissionDenied, roles_required
from crm.security.redirects import local_target
from crm.citizens import services as citizens
from crm.citizens.services import CitizenError

bp = Blueprint("consent", __name__)
public_bp = Blueprint("selfservice", __name__, url_prefix="/my")


@bp.app_context_processor
def consent_labels():
    return {"DSR_TYPES": rights.TYPES, "DSR_STATUSES": rights.STATUSES, "CONSENT_CHANNELS_RU": services.CHANNELS_RU,
            "CONSENT_STATUS_RU": Labels(services.STATUS_RU), "controller_configured": services.controller_configured,
            "purpose_ru": services.purpose_label, "role_label": audit.role_label, "outcome_ru": audit.outcome_label}


@bp.errorhandler(PermissionDenied)
def _denied(_exc):
    abort(403)


# --- a citizen: self-service link ------------------------------------------------------------------

@bp.post("/citizens/<citizen_id>/selfservice-link")
@roles_required("operator", "admin", "dpo")
def selfservice_link(citizen_id):
    """Text the citizen a single-use link to their self-service page."""

    citizen = citizens.get(citizen_id) or abort(404)
    base = current_app.config["CRM_PUBLIC_URL"] or request.url_root
    try:
        selfservice.issue_link(citizen, user=current_user, base_url=base)
        flash(_("Ссылка на страницу управления согласиями отправлена по SMS."), "success")
    except selfservice.SelfServiceError as exc:
        flash(str(exc), "error")
    default = url_for("dpo.history", citizen_id=citizen_id) if current_user.role == "dpo" \
        else url_for("appeals.operator_home")
    return redirect(local_target(request.form.get("next"), default))


# --- retention from the command line -------------------------------------------------------------

# --- the citizen's self-service page --------------------------------------------------------------

SESSION_KEYS = ("ss_scope", "ss_until", "ss_grant", "ss_pending")


def _scope() -> list[str]:
    """The citizen ids of this self-service session, or [] when there is none or it expired."""
    return selfservice.session_scope()[0]


def _start_session(scope: list[str], grant_id: str) -> None:
    session["ss_scope"] = scope
    session["ss_grant"] = grant_id
    session["ss_until"] = int(time.time()) + selfservice.session_s()
    session.pop("ss_pending", None)


def _refused(exc: selfservice.SelfServiceError):
    status = 400 if exc.code in ("forged", "wrong_code") else 410
    return render_template("consent/self_refused.html", message=str(exc), form=PhoneForm()), status


@public_bp.route("", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def start():
    """The entry page: type the phone number to get a code by SMS."""
    if request.method == "GET" and _scope():
        return redirect(url_for("selfservice.consents"))
    form = PhoneForm()
    if form.validate_on_submit():

        try:
            session["ss_pending"] = selfservice.request_code(form.phone.data)
        except CitizenError as exc:
            form.phone.errors.append(str(exc))
        else:
            return redirect(url_for("selfservice.code"))
    status = 422 if request.method == "POST" else 200
    return render_template("consent/self_start.html", form=form), status


@public_bp.route("/code", methods=["GET", "POST"])
@limiter.limit("20 per minute", methods=["POST"])
def code():
    """Type the code from the SMS."""
    pending = session.get("ss_pending")
    if not pending:
        return redirect(url_for("selfservice.start"))
    form = CodeForm()
    status = 200
    if form.validate_on_submit():
        try:
            scope = selfservice.verify_code(pending, form.code.data)
        except selfservice.SelfServiceError as exc:
            form.code.errors.append(str(exc))
            status = 400
            if exc.code in ("used", "expired", "too_many"):
                session.pop("ss_pending", None)
        else:
            _start_session(scope, pending)
            return redirect(url_for("selfservice.consents"))
    elif request.method == "POST":
        status = 422
    return render_template("consent/self_code.html", form=form), status


@public_bp.route("/link/<token>", methods=["GET", "POST"])
def link(token):
    """A signed link: GET checks it and shows a button (link previewers must not use it up), POST uses it."""
    try:
        if request.method == "POST":  # CSRF is checked by CSRFProtect, as on every form
            scope, grant_id = selfservice.use_link(token)
            _start_session(scope, grant_id)
            return redirect(url_for("selfservice.consents"))
        selfservice.check_link(token)
    except selfservice.SelfServiceError as exc:
        if request.method == "GET":
            selfservice.refused(exc)
        return _refused(exc)
    return render_template("consent/self_link.html")


@public_bp.get("/consents")
def consents():
    """The citizen's consents with a withdraw button each; no personal values are shown."""
    scope = _scope()
    if not scope:
        flash(_("Войдите по ссылке или коду из SMS."), "error")
        return redirect(url_for("selfservice.start"))
    regs = {p.code: p for p in services.purposes()}
    events = [e for cid in scope for e in services.for_citizen(cid) if e.given]
    active = [e for e in events if e.status == "active"]
    past = [e for e in events if e.status != "active"]
    return render_template("consent/self_consents.html", active=active, past=past, purposes=regs,
                           texts={e.id: services.consent_text(e)[0] for e in events},
                           answers=rights.awaiting_self_service(scope),
                           by_code=selfservice.signed_in_by_code(session.get("ss_grant")),
                           until=session.get("ss_until"))


@public_bp.post("/consents/<consent_id>/withdraw")
def withdraw(consent_id):
    """Withdraw one consent (and any other in force for the same purpose). Always accepted."""
    scope = _scope()
    event = services.get(consent_id)
    if not scope:
        flash(_("Сеанс истёк: войдите снова по ссылке или коду из SMS."), "error")
        return redirect(url_for("selfservice.start"))
    if event is None or event.citizen_id not in scope:
        abort(404)
    services.withdraw(event, channel="web", ref=f"selfservice grant {session.get('ss_grant')}",
                      actor=selfservice.CITIZEN)
    name = services.get_purpose(event.purpose_code)
    flash(_("Согласие «%(purpose)s» отозвано. Обработка по этой цели прекращена.",
            purpose=name.name_ru if name else event.purpose_code), "success")
    return redirect(url_for("selfservice.consents"))


@public_bp.post("/logout")
def logout():
    selfservice.end_session(session.get("ss_grant"))  # a copy of this cookie stops working too
    for k in SESSION_KEYS:
        session.pop(k, None)
    flash(_("Вы вышли. Чтобы вернуться, запросите новый код."), "success")
    return redirect(url_for("selfservice.start"))
