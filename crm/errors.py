"""Error pages: JSON ``{"error": {"code", "message"}}`` under ``/api/``, Russian HTML elsewhere."""
from __future__ import annotations

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException

MESSAGES_RU = {400: "Неверный запрос", 401: "Требуется вход", 403: "Доступ запрещён", 404: "Не найдено",
               405: "Метод не разрешён", 413: "Файл слишком большой", 429: "Слишком много попыток, подождите",
               409: "Конфликт с текущим состоянием данных", 415: "Неподдерживаемый тип содержимого",
               422: "Данные не прошли проверку", 500: "Внутренняя ошибка", 503: "Сервис временно недоступен"}


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/open311/")


def api_error(status: int, code: str, message: str):
    resp = jsonify({"error": {"code": code, "message": message}})
    resp.status_code = status
    return resp


def register(app) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        if wants_json():
            code = (exc.name or "error").lower().replace(" ", "_")
            # werkzeug's stock (English) descriptions are replaced; a description given to abort() is kept
            default = exc.description is None or exc.description == type(exc).description
            return api_error(status, code, MESSAGES_RU.get(status, exc.name) if default else exc.description)
        return render_template("error.html", status=status, message=MESSAGES_RU.get(status, exc.name)), status

    @app.errorhandler(Exception)
    def internal(exc: Exception):
        from crm.db import db

        db.session.rollback()
        app.logger.exception("unhandled error")
        if wants_json():
            return api_error(500, "internal", "внутренняя ошибка сервера")
        return render_template("error.html", status=500, message=MESSAGES_RU[500]), 500
