"""Errors, one hierarchy for the whole application, and their handlers, registered once.

A service raises a :class:`CrmError` subclass with a Russian message the user can act on, a stable
``code`` and, for bad input, the ``field`` at fault. The message is marked, not yet translated
(``_l("...", name=value)``, :func:`crm.i18n.lazy_gettext`): it becomes text in the request's
language when an edge reads ``exc.message`` or ``str(exc)`` (Russian outside a request, e.g. in the
CLI). The handlers registered by :func:`register` answer it as ``{"error": {"code", "message",
"field"?}}`` with the class's HTTP status under ``/api/`` (and ``/open311/``), and as the error page
elsewhere. The transaction of the request is rolled back before either answer, so a view never
calls ``db.session.rollback()``.

| class | HTTP status | when |
|---|---|---|
| :class:`InvalidInput` | 400 | the request's data is malformed or out of range |
| :class:`Forbidden` | 403 | the role, scope or a missing consent does not allow it |
| :class:`NotFound` | 404 | no such object (or not visible to this user) |
| :class:`Conflict` | 409 | the object's current state does not allow it (a stale transition, a duplicate) |
| :class:`Gone` | 410 | the object's data was destroyed (erasure) |
| :class:`Unavailable` | 503 | a dependency (Redis, the key store, the model) is down |
"""
from __future__ import annotations

from flask import jsonify, render_template, request
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from crm import resubmit

from crm.db import db
from crm.i18n import N_, LazyText

MESSAGES_RU = {400: N_("Неверный запрос"), 401: N_("Требуется вход"), 403: N_("Доступ запрещён"), 404: N_("Не найдено"),
               405: N_("Метод не разрешён"), 413: N_("Файл слишком большой"), 429: N_("Слишком много попыток, подождите"),
               409: N_("Конфликт с текущим состоянием данных"), 415: N_("Неподдерживаемый тип содержимого"),
               422: N_("Данные не прошли проверку"), 500: N_("Внутренняя ошибка"), 503: N_("Сервис временно недоступен")}


class CrmError(Exception):
    """Base of every error a service raises for the user to see.

    ``message`` is Russian and actionable, usually marked ``_l("...")`` (a :class:`crm.i18n.LazyText`,
    read back through :attr:`message` as text in the request's language); ``code`` is a stable
    machine-readable word (API clients and tests match on it); ``field`` names the input at fault, if
    any; ``status`` is the HTTP status (the class's unless given)."""

    status: int = 400
    code: str = "error"

    def __init__(self, message: str | LazyText, *, code: str | None = None, field: str | None = None,
                 status: int | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.field = field

    @property
    def message(self) -> str:
        """The message as text, in the request's language (Russian outside a request)."""
        return str(self.args[0])

    def to_json(self) -> dict:
        """``{"error": {"code", "message", "field"?}}``."""
        body = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return {"error": body}


class InvalidInput(CrmError, ValueError):
    """Malformed or out-of-range input (400)."""

    status, code = 400, "invalid"


class Forbidden(CrmError):
    """Not allowed for this user, scope or consent (403)."""

    status, code = 403, "forbidden"


class NotFound(CrmError, LookupError):
    """No such object, or not visible to this user (404)."""

    status, code = 404, "not_found"


class Conflict(CrmError):
    """The object's current state does not allow the action (409)."""

    status, code = 409, "conflict"


class Gone(CrmError):
    """The object's data was destroyed (410)."""

    status, code = 410, "gone"


class Unavailable(CrmError):
    """A dependency is down (503)."""

    status, code = 503, "unavailable"


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/open311/")


def api_error(status: int, code: str, message: str):
    resp = jsonify({"error": {"code": code, "message": message}})
    resp.status_code = status
    return resp


def register(app) -> None:
    """Register the error handlers once for the whole app (HTML and JSON chosen by URL prefix)."""
    @app.errorhandler(CrmError)
    def crm_error(exc: CrmError):
        db.session.rollback()
        if wants_json():
            resp = jsonify(exc.to_json())
            resp.status_code = exc.status
            return resp
        return render_template("error.html", status=exc.status, message=exc.message), exc.status

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        """An expired or missing CSRF token on a form: the typed data shown back in a form with a fresh
        token (crm.resubmit), not a bare 400."""
        if wants_json() or request.method != "POST":
            return http_error(exc)
        return resubmit.render(gettext(N_("Срок действия формы истёк (защита от подделки запросов). "
                                          "Проверьте данные и отправьте форму ещё раз.")), 400)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge):
        """An upload over ``MAX_CONTENT_LENGTH``: the text typed before the file is kept
        (crm.resubmit.leading_fields) and the limit named."""
        if wants_json() or request.method != "POST":
            return http_error(exc)
        limit_mb = max(1, int(app.config.get("MAX_CONTENT_LENGTH") or 0) // (1024 * 1024))
        fields, files = resubmit.leading_fields(request.environ)
        return resubmit.render(gettext(N_("Файл больше допустимых %(mb)s МБ: выберите файл меньше. "
                                          "Введённое в форму сохранено."), mb=limit_mb), 413,
                               fields=fields, file_names=files)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        if wants_json():
            code = (exc.name or "error").lower().replace(" ", "_")
            # werkzeug's stock (English) descriptions are replaced; a description given to abort() is kept
            default = exc.description is None or exc.description == type(exc).description
            return api_error(status, code, gettext(MESSAGES_RU[status]) if default and status in MESSAGES_RU
                             else exc.name if default else exc.description)
        return render_template("error.html", status=status, message=gettext(MESSAGES_RU[status]) if status in MESSAGES_RU
                               else exc.name), status

    @app.errorhandler(Exception)
    def internal(exc: Exception):
        db.session.rollback()
        app.logger.exception("unhandled error")
        if wants_json():
            return api_error(500, "internal", gettext(N_("внутренняя ошибка сервера")))
        return render_template("error.html", status=500, message=gettext(MESSAGES_RU[500])), 500
