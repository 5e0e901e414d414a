"""The application factory: configuration, extensions, blueprints, hooks, error handlers, commands.

``crm.create_app`` (the package) calls :func:`create_app`; this module imports every feature, so it
sits in the top layer (pyproject.toml, import-linter)."""
from __future__ import annotations

from pathlib import Path

from flask import Flask, request
from flask_babel import gettext
from werkzeug.middleware.proxy_fix import ProxyFix

from crm import api, config, i18n, weblog
from crm.admin.staff import bp as staff_bp
from crm.admin.views import bp as admin_bp
from crm.appeals import hooks as appeals_hooks
from crm.appeals import personal_data as appeals_data
from crm.appeals.api import bp as appeals_api
from crm.appeals.views import bp as appeals_bp, self_bp as appeals_self_bp
from crm.buildings.api import bp as buildings_api
from crm.buildings.views import bp as buildings_bp
from crm.executors.api import bp as executors_api
from crm.executors import hooks as executors_hooks
from crm.calls import hooks as calls_hooks
from crm.consent import hooks as consent_hooks
from crm.calls import personal_data as calls_data
from crm.calls.api import bp as calls_api
from crm.calls.views import bp as calls_bp
from crm.citizens import personal_data as citizens_data
from crm.citizens.api import bp as citizens_api
from crm.consent import personal_data as consent_data
from crm.consent import startup as consent_startup
from crm.consent.api import bp as consent_api
from crm.consent.views import bp as consent_bp
from crm.consent.views import public_bp as selfservice_bp
from crm.csat import hooks as csat_hooks
from crm.csat import personal_data as csat_data
from crm.csat.views import bp as csat_bp
from crm.db import IdConverter, init_engine_events
from crm.dispatch import hooks as dispatch_hooks
from crm.dispatch.api import bp as dispatch_api
from crm.dispatch.views import bp as dispatch_bp
from crm.dpo import hooks as dpo_hooks
from crm.dpo.api import bp as audit_api
from crm.dpo.views import bp as dpo_bp, selfservice_bp as dpo_selfservice_bp
from crm.errors import register as register_error_responses
from crm.extensions import csrf, db, limiter, login_manager, migrate
from crm.health import bp as health_bp, warn_privileged_role
from crm.kb.api import bp as kb_api
from crm.kb.views import bp as kb_bp
from crm.incidents import hooks as incidents_hooks
from crm.incidents import personal_data as incidents_data
from crm.incidents.api import bp as incidents_api
from crm.incidents.views import bp as incidents_bp
from crm import notifications
from crm.notifications.api import bp as notifications_api
from crm.notifications.views import bp as notifications_bp
from crm.qa import hooks as qa_hooks
from crm.qa import personal_data as qa_data
from crm.qa.api import bp as qa_api
from crm.qa.views import bp as qa_bp
from crm.reports.api import bp as reports_api
from crm.reports.views import bp as reports_bp
from crm.security import inputs, startup
from crm.security.headers import SECURITY_HEADERS
from crm.security.spool import SpoolingRequest
from crm.telephony import hooks as telephony_hooks
from crm.telephony import inbox as telephony_inbox
from crm.telephony import personal_data as telephony_data
from crm.telephony.api import bp as telephony_api, ivr_bp as ivr_api
from crm.telephony.views import bp as telephony_bp
from crm.users import access
from crm.users import sessions
from crm.users import personal_data as users_data
from crm.users import throttle as login_throttle
from crm.users.services import load_user
from crm.users.views import bp as users_bp
import crm.models  # noqa: F401
import crm.security.audit.chain  # noqa: F401  (registers the session hooks that chain the access log)


def create_app(test_config: dict | None = None) -> Flask:
    """Application factory: configuration, extensions, blueprints, error handlers, commands."""
    default_instance = Path(__file__).resolve().parent.parent / "instance"
    instance = config.instance_path_from_env(default_instance)
    if test_config and test_config.get("INSTANCE_PATH"):
        instance = Path(test_config["INSTANCE_PATH"])
    app = Flask("crm", instance_path=str(instance), instance_relative_config=True)
    app.url_map.converters["int"] = IdConverter  # ids beyond SQL INTEGER are a 404, not a database error
    app.request_class = SpoolingRequest  # uploads spooled encrypted, never as plaintext temporary files
    config.load(app, test_config)
    weblog.install(app)  # request lines without query strings or secret path segments
    telephony_inbox.install(app)  # the PBX's events queued without the request cycle (issue 16 throughput)
    proxies = int(app.config["CRM_TRUSTED_PROXIES"])
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
    register_extensions(app)
    sessions.configure(app)  # server-side staff sessions, HTTPS cookies, HSTS (crm.users.sessions)
    notifications.init_app(app)  # the SMS gateway and the e-mail transport from CRM_SMS_* / CRM_SMTP_*
    register_security(app)
    register_personal_data(app)
    register_blueprints(app)
    access.init_app(app)  # the role check of crm.security.policy, before every view
    register_hooks(app)
    register_errorhandlers(app)
    register_security_headers(app)
    register_commands(app)
    warn_privileged_role(app)  # a role that could switch the append-only triggers off (README)
    return app


def register_commands(app: Flask) -> None:
    """Each feature's CLI commands on ``app.cli`` (crm.cli.register_commands)."""
    # deferred: the CLI modules import the factory (crm.cli's FlaskGroup, crm.worker's app for jobs)
    from crm.cli import register_commands as register

    register(app)


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    init_engine_events(app)
    migrate.init_app(app, db, render_as_batch=True, directory=str(Path(__file__).resolve().parent.parent / "migrations"))
    csrf.init_app(app)
    i18n.init_app(app)
    # Flask-Limiter's counters on the app's Redis, shared by every worker and host (not per process)
    if not app.config.get("RATELIMIT_STORAGE_URI"):
        app.config["RATELIMIT_STORAGE_URI"] = login_throttle.storage_uri(app)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", app.config["CRM_QUEUE_PREFIX"])
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "users.login"
    login_manager.login_message = i18n.N_("Войдите, чтобы продолжить.")
    login_manager.localize_callback = gettext
    login_manager.user_loader(load_user)


def register_security(app: Flask) -> None:
    """Start-up checks: blind-index budget, keyring, key store (crm.security.startup); the
    controller's name and address (crm.consent.startup, at the first request)."""
    startup.init_app(app)
    consent_startup.init_app(app)
    inputs.init_app(app)  # NUL characters and over-deep JSON refused 400 before any view (crm.security.inputs)


def register_personal_data(app: Flask) -> None:
    """Each feature declares its tables' personal data to crm.security.registry (what erasure,
    rotation and the access-request export work through); raises ``RuntimeError`` when a model has
    an encrypted column no feature declares."""
    for feature in (citizens_data, appeals_data, calls_data, qa_data, consent_data, telephony_data, csat_data,
                    incidents_data, users_data):
        feature.register()
    startup.check_personal_data()


def register_blueprints(app: Flask) -> None:
    for bp in (users_bp, appeals_bp, buildings_bp, calls_bp, qa_bp, dispatch_bp, dpo_bp, consent_bp, selfservice_bp,
               dpo_selfservice_bp, health_bp, admin_bp, staff_bp, appeals_self_bp, kb_bp, telephony_bp, incidents_bp, csat_bp, reports_bp,
               notifications_bp):
        app.register_blueprint(bp)
    register_api(app)


def register_api(app: Flask) -> None:
    """``/api/v1``: each feature's API blueprint, documented by one OpenAPI document (crm.api)."""
    api.init_app(app, [appeals_api, incidents_api, buildings_api, executors_api, dispatch_api, citizens_api, consent_api, calls_api, qa_api,
                       reports_api, audit_api, kb_api, telephony_api, ivr_api, notifications_api])


def register_hooks(app: Flask) -> None:
    """Each feature subscribes its reactions to the others' hooks (crm.hooks, crm/<feature>/hooks.py)."""
    for feature in (executors_hooks, calls_hooks, consent_hooks, incidents_hooks, appeals_hooks, qa_hooks, dispatch_hooks,
                    csat_hooks, dpo_hooks, telephony_hooks):
        feature.register()


def register_errorhandlers(app: Flask) -> None:
    register_error_responses(app)


def register_security_headers(app: Flask) -> None:
    @app.after_request
    def headers(resp):
        for name, value in SECURITY_HEADERS:
            resp.headers.setdefault(name, value)
        # every page and every JSON answer (personal data: the API's, the pages' scripts') is kept out
        # of browser and proxy caches; only the static files (no personal data) may be cached
        if request.endpoint != "static":
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp
