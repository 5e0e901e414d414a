"""Error pages: JSON ``{"error": {"code", "message"}}`` under ``/api/``, Russian HTML elsewhere."""
from __future__ import annotations

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException

MESSAGES_RU = {400: "Неверный запрос", 401: "Требуется вход", 403: "Доступ запрещён", 404: "Не найдено",
               405: "Метод не разрешён", 413: "Файл слишком большой", 429: "Слишком много попыток, подождите",
               500: "Внутренняя ошибка"}


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
            return api_error(status, code, exc.description or MESSAGES_RU.get(status, ""))
        return render_template("error.html", status=status, message=MESSAGES_RU.get(status, exc.name)), status

    @app.errorhandler(Exception)
    def internal(exc: Exception):
        from crm.db import db

        db.session.rollback()
        app.logger.exception("unhandled error")
        if wants_json():
            return api_error(500, "internal", "internal error")
        return render_template("error.html", status=500, message=MESSAGES_RU[500]), 500
