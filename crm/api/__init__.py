"""``/api/v1``: bearer-token auth, JSON errors, the OpenAPI document.

Feature packages add their endpoints in their own ``api.py`` to :data:`bp`; they are imported at
the bottom of this module so registering ``bp`` registers them all."""
from __future__ import annotations

from functools import wraps

from flask import Blueprint, g, request
from werkzeug.exceptions import HTTPException

from crm.errors import api_error
from crm.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)


class ApiError(Exception):
    """Raise in an API handler to answer ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    return api_error(exc.status, exc.code, exc.message)


def token_required(*roles: str):
    """Authenticate ``Authorization: Bearer <token>`` and check the role; sets ``g.api_user`` and
    logs the user in for this request (so the access log names them)."""
    def deco(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            from flask_login import login_user

            from crm.users.services import user_for_token

            header = request.headers.get("Authorization", "")
            if not header.startswith("Bearer "):
                return api_error(401, "unauthorized", "нужен токен: заголовок «Authorization: Bearer <токен>»")
            user = user_for_token(header[7:].strip())
            if user is None:
                return api_error(401, "unauthorized", "токен недействителен или отозван")
            if roles and user.role not in roles:
                from crm.security.permissions import ROLE_NAMES_RU

                role = ROLE_NAMES_RU.get(user.role, user.role)
                return api_error(403, "forbidden", f"роли «{role}» это действие не разрешено")
            g.api_user = user
            login_user(user)  # request-scoped: the API sets no session cookie (see after_request below)
            return fn(*args, **kwargs)
        wrapper.crm_roles = roles
        return wrapper
    return deco


@bp.before_request
def _remember_session():
    from flask import session

    g.crm_session_before = dict(session)


@bp.after_request
def _no_session_cookie(resp):
    """The API is stateless: the token's request-scoped login must not reach the session cookie.
    The session is put back as the request found it and not saved, so a call without a cookie
    gets none, and a staff member's browser that opens an API URL (the OpenAPI document, say)
    keeps its own sign-in."""
    from flask import session

    session.clear()
    session.update(g.get("crm_session_before", {}))
    session.modified = False
    return resp


def json_body() -> dict:
    """The request's JSON object; raises :class:`ApiError` 400 when it is not one."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "тело запроса должно быть JSON-объектом")
    return data


from crm.api import openapi  # noqa: E402,F401
from crm.appeals import api as _appeals_api  # noqa: E402,F401
from crm.calls import api as _calls_api  # noqa: E402,F401
from crm.citizens import api as _citizens_api  # noqa: E402,F401
from crm.consent import api as _consent_api  # noqa: E402,F401
from crm.qa import api as _qa_api  # noqa: E402,F401
from crm.reports import api as _reports_api  # noqa: E402,F401
from crm.security import api as _security_api  # noqa: E402,F401
