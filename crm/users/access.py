"""The role check of :mod:`crm.security.policy`, made once for every request before the view runs.

:func:`init_app` registers :func:`check` as a ``before_request`` hook. For the request's endpoint it
looks up the rule in :data:`crm.security.policy.POLICY`:

- no rule: refused 403 (fail closed) and logged as an error naming the endpoint — a new route must be
  added to the table (tests/security/test_policy_matrix.py fails until it is);
- ``public``, ``citizen``, ``signed``: passed on; the view checks the link, the citizen's self-service
  session or the signature itself;
- ``staff``: HTML pages need a signed-in user (else the sign-in redirect; a form posted after the session
  ended gets its typed data back, :mod:`crm.resubmit`) of an allowed role (else 403);
  ``/api/v1`` operations need a bearer token (or, for the reads that accept it, the staff browser's
  session) of an allowed role (else 401 / 403 as ``{"error": {"code", "message"}}``).

The per-object scope (an executor's own appeals, an operator's own calls) is checked afterwards by the
services named in :data:`crm.security.policy.SCOPES`.
"""
from __future__ import annotations

from flask import Flask, abort, current_app, request, session
from flask_login import current_user

from crm import resubmit
from crm.errors import api_error
from crm.extensions import login_manager
from crm.i18n import N_, translate
from crm.security import policy
from crm.security.permissions import ROLE_NAMES_RU
from crm.users.services import user_for_token


def _api() -> bool:
    return request.path.startswith("/api/")


def _forbidden(role: str | None):
    if _api():
        name = ROLE_NAMES_RU.get(role, role or "")
        return api_error(403, "forbidden", translate(N_("роли «%(role)s» это действие не разрешено"),
                                                     role=translate(name)))
    abort(403)


def bearer_user():
    """The user of the request's ``Authorization: Bearer`` token, looked up once per request (the hook
    and ``crm.api.token_required`` share it through the request's environ): ``(token, user or None)``, or None when the
    request carries no bearer token."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    token = header[7:].strip()
    cached = request.environ.get("crm.bearer")  # this request's, not the app context's (tests share one)
    if cached is None or cached[0] != token:
        cached = request.environ["crm.bearer"] = (token, user_for_token(token))
    return cached


def check():
    """``before_request``: the role check of the request's endpoint (see the module's docstring).
    Returns None to let the request through, else the refusal."""
    endpoint = request.endpoint
    if endpoint is None:  # no route matched: routing answers 404 / 405
        return None
    rule = policy.rule_for(endpoint)
    if rule is None:
        current_app.logger.error("no authorization rule for endpoint %r: refused (add it to crm/security/policy.py)",
                                 endpoint)
        if _api():
            return api_error(403, "no_policy", translate(N_("для этого адреса не задано правило доступа")))
        abort(403)
    if rule.kind != "staff":
        return None
    if _api():
        bearer = bearer_user()
        if bearer is not None:
            user = bearer[1]
            if user is None:
                return api_error(401, "unauthorized", translate(N_("токен недействителен или отозван")))
        elif (session.get("_user_id") and current_user.is_authenticated
              and current_user.get_id() == session["_user_id"]):
            user = current_user  # a staff browser; token_required decides whether this read takes a session
        else:
            return api_error(401, "unauthorized",
                             translate(N_("нужен токен: заголовок «Authorization: Bearer <токен>»")))
    else:
        if not current_user.is_authenticated:
            if request.method == "POST" and resubmit.typed_fields():
                # the session ended while the form was open: keep what was typed (crm.resubmit)
                return resubmit.render(translate(N_("Сеанс работы истёк, форма не отправлена. Войдите снова "
                                                    "в новой вкладке, затем вернитесь сюда и отправьте форму ещё раз.")),
                                       401, sign_in=True)
            return login_manager.unauthorized()
        user = current_user
    if not rule.allows(user.role):
        return _forbidden(user.role)
    return None


def unruled_endpoints(app: Flask) -> list[str]:
    """Endpoints of ``app``'s URL map with no rule in the policy table, sorted."""
    return sorted({r.endpoint for r in app.url_map.iter_rules()} - set(policy.POLICY))


def init_app(app: Flask) -> None:
    """Register :func:`check` on ``app`` (call after the blueprints); logs each endpoint with no rule
    (those are refused until the table names them)."""
    app.before_request(check)
    for endpoint in unruled_endpoints(app):
        app.logger.warning("no authorization rule for endpoint %r: every request to it is refused", endpoint)
