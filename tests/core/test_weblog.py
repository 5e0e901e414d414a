"""crm.weblog: request data in logs loses query strings and secret path segments, whatever the
log format (gunicorn's atoms, werkzeug's request line, Flask's exception line)."""
from __future__ import annotations

import io
import logging
from datetime import timedelta
from types import SimpleNamespace

from gunicorn.config import Config

from crm import weblog

PHONE = "%2B79164802735"
TOKEN = "eyJnIjoiMTIzIn0.Z1x2Yw.abcDEF_ghi-JKL"


def test_targets_and_texts_are_redacted():
    assert weblog.redact_target(f"/api/v1/citizens?phone={PHONE}") == "/api/v1/citizens"
    assert weblog.redact_target(f"/my/link/{TOKEN}") == "/my/link/***"
    assert weblog.redact_target(f"/my/link/{TOKEN}?utm=sms#x") == "/my/link/***"
    line = f'127.0.0.1 - - [x] "GET /api/v1/ivr/outage?phone={PHONE} HTTP/1.1" 200 - "http://h:80/my/link/{TOKEN}?a=1"'
    clean = weblog.redact_text(line)
    assert PHONE not in clean and TOKEN not in clean
    assert '"GET /api/v1/ivr/outage HTTP/1.1"' in clean and '"http://h:80/my/link/***"' in clean
    assert weblog.redact_text("GET /healthz HTTP/1.1") == "GET /healthz HTTP/1.1"


def test_filter_rewrites_werkzeug_request_lines_and_flask_exception_lines():
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    logger = logging.getLogger("test.weblog")
    logger.propagate = False
    logger.addHandler(handler)
    logger.addFilter(weblog.RedactingFilter())
    try:
        # werkzeug's WSGIRequestHandler.log_request (with its terminal colours)
        logger.warning('%s - - [%s] %s\n', "127.0.0.1", "now", f'\x1b[1m"GET /my/link/{TOKEN} HTTP/1.1"\x1b[0m 200 -')
        logger.warning('"%s" %s %s', f"GET /api/v1/citizens?phone={PHONE} HTTP/1.1", 200, "-")
        logger.error("Exception on %s [%s]", f"/my/link/{TOKEN}", "POST")  # Flask's app.log_exception
    finally:
        logger.removeHandler(handler)
    out = buf.getvalue()
    assert PHONE not in out and TOKEN not in out
    assert out.count("/my/link/***") == 2 and "GET /api/v1/citizens HTTP/1.1" in out


def test_gunicorn_logger_redacts_every_atom_whatever_the_format():
    cfg = Config()
    cfg.set("accesslog", "-")
    cfg.set("access_log_format", '%(r)s|%(U)s|%(q)s|%(f)s|%({referer}i)s|%({query_string}e)s|%({raw_uri}e)s|'
                                 '%({cookie}i)s|%({authorization}i)s')
    log = weblog.GunicornLogger(cfg)
    buf = io.StringIO()
    log.access_log.handlers[0].setStream(buf)  # accesslog "-": a StreamHandler
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": f"/my/link/{TOKEN}?phone={PHONE}", "PATH_INFO": f"/my/link/{TOKEN}",
               "QUERY_STRING": f"phone={PHONE}", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
               "HTTP_REFERER": f"https://crm.example/my/link/{TOKEN}?x=1"}
    req = SimpleNamespace(headers=[("REFERER", environ["HTTP_REFERER"]), ("COOKIE", "session=secret-cookie"),
                                   ("AUTHORIZATION", "Bearer secret-token")])
    resp = SimpleNamespace(status="200 OK", sent=10, headers=[])
    log.access(resp, req, environ, timedelta(seconds=0.01))
    out = buf.getvalue()
    assert out, "the access line was written"
    for secret in (TOKEN, PHONE, "79164802735", "secret-cookie", "secret-token"):
        assert secret not in out, out
    assert out.startswith("GET /my/link/*** HTTP/1.1|/my/link/***|-|https://crm.example/my/link/***|"), out


def test_gunicorn_conf_uses_the_redacting_logger():
    from pathlib import Path

    cfg = Config()
    path = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    for key in ("logger_class", "access_log_format", "accesslog"):
        cfg.set(key, namespace[key])
    assert cfg.logger_class is weblog.GunicornLogger
    fmt = cfg.access_log_format
    assert "%(q)s" not in fmt and "%(r)s" not in fmt and "%(f)s" not in fmt and "{referer}i" not in fmt
