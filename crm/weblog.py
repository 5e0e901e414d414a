"""Request logs without personal data: no query strings, no secret path segments.

A URL is copied into every request log on its way: the development server's (werkzeug), gunicorn's
access and error logs, Flask's "Exception on /path" line, and any proxy in front. A phone number
in ``GET /api/v1/citizens?phone=`` or a self-service link token in ``/my/link/<token>`` would land in
all of them, outside the encrypted database and the access log's rules. So:

- the API takes phone look-ups and searches in a POST body (``POST /api/v1/citizens/search``, whose
  GET is a deprecated alias; ``POST /api/v1/appeals/search``, whose ``GET /api/v1/appeals?q=`` answers
  with ``Deprecation``; ``POST /api/v1/calls/search`` and the search page's form, whose GET with a phrase
  is refused), and
- every log line the web processes write goes through :func:`redact_text`: the query string of any
  path or URL is dropped and the secret segment of a :data:`SECRET_PATHS` route becomes ``***``.

:func:`install` puts :class:`RedactingFilter` on the werkzeug and the app's loggers (the factory
calls it, so ``crm run``/``flask run`` are covered); ``gunicorn.conf.py`` at the project root sets
:class:`GunicornLogger`, which redacts the access-log atoms and filters gunicorn's error log.
"""
from __future__ import annotations

import logging
import re

from gunicorn.glogging import Logger as _GunicornBaseLogger

#: Routes whose path carries a secret: (compiled pattern, replacement). The self-service link
#: (``crm.consent.views.link``) holds a signed single-use token, the satisfaction survey's link
#: (``crm.csat.views.survey``, ``/csat/<token>``; not its ``/csat/thanks`` page) a random one.
SECRET_PATHS: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"(/my/link/)[\w.~%*-]+"), r"\1***"),
    (re.compile(r"(/csat/)(?!thanks(?![\w.~%*-]))[\w.~%*-]+"), r"\1***"),
)
#: URL variable names that mark a secret segment; tests/security/test_request_log_leaks.py checks every route with
#: one is covered by :data:`SECRET_PATHS`.
SECRET_VARIABLES = ("token", "secret", "otp")
MASK = "***"

# a path or absolute URL followed by a query string, inside a longer text
_QUERY = re.compile(r"((?:https?://[^\s\"'/]+)?/[^\s\"'?#]*)\?[^\s\"']*")
# request headers that hold credentials or session state
_SECRET_HEADERS = ("{cookie}i", "{authorization}i", "{x-crm-signature}i", "{set-cookie}o")


def redact_target(target: str | None) -> str | None:
    """A request target (path with optional query) as it may be logged: the query string removed,
    secret path segments masked. ``"/my/link/abc?x=1"`` → ``"/my/link/***"``."""
    if not target:
        return target
    path = target.split("?", 1)[0].split("#", 1)[0]
    for pattern, repl in SECRET_PATHS:
        path = pattern.sub(repl, path)
    return path


def redact_text(text: str) -> str:
    """Any log text with the query strings of the paths and URLs in it removed and secret path
    segments masked (e.g. a request line, a referer, "Exception on /my/link/… [GET]")."""
    if not text:
        return text
    text = _QUERY.sub(r"\1", text)
    for pattern, repl in SECRET_PATHS:
        text = pattern.sub(repl, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites a record's message through :func:`redact_text` (it never drops
    a record). The message is formatted here, so its arguments cannot carry a URL past it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return True
        clean = redact_text(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        return True


_FILTER = RedactingFilter()


def install(app) -> None:
    """Redact the request lines of the development server (logger ``werkzeug``) and the app's own
    log (``app.logger``: Flask's "Exception on <path>"). Idempotent."""
    for logger in (logging.getLogger("werkzeug"), app.logger):
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


class GunicornLogger(_GunicornBaseLogger):
    """gunicorn's logger with redacted request data (``logger_class`` in ``gunicorn.conf.py``).

    Whatever ``access_log_format`` says, ``%(r)s`` and ``%(U)s`` carry the redacted path, ``%(q)s``,
    the query-string and URI environ atoms are empty, the referer loses its query and secret
    segments, cookies and credentials are ``-``; the error log ("Error handling request /path?…")
    goes through :class:`RedactingFilter`."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)

    def atoms(self, resp, req, environ, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        path = redact_target(environ.get("RAW_URI") or environ.get("PATH_INFO") or "") or "-"
        atoms["U"] = path
        atoms["r"] = f"{environ.get('REQUEST_METHOD')} {path} {environ.get('SERVER_PROTOCOL')}"
        atoms["q"] = "-"
        for key in ("{query_string}e", "{raw_uri}e", "{request_uri}e", "{path_info}e", *_SECRET_HEADERS):
            if key in atoms:
                atoms[key] = path if key in ("{raw_uri}e", "{request_uri}e", "{path_info}e") else "-"
        return {k: (redact_text(v) if isinstance(v, str) else v) for k, v in atoms.items()}
