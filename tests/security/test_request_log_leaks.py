"""Canary: no phone number, name or self-service link token in any request log.

A real development server (``crm run``, as ``make run`` starts it) and a real gunicorn
(``gunicorn -c gunicorn.conf.py wsgi:app``, as the README deploys it) run against this test run's
database, each on a free port with its logs in files. A canary phone goes through the deprecated
``GET /api/v1/citizens?phone=`` and the ``POST /api/v1/citizens/search``; a canary phone and a canary
surname go through the appeal search (the deprecated ``GET /api/v1/appeals?q=`` and ``POST
/api/v1/appeals/search``) and the transcript search (``POST /api/v1/calls/search``, ``POST /calls/search``
from a signed-in browser session, and the refused ``GET`` forms of both); a real self-service link is
opened, and a page is fetched with that link as its referer. Then every log file either process
wrote (access log, error log, the app's stdout and stderr) is searched for the phone in its usual
spellings, the surname (as typed and percent-encoded) and the token: none may hold them, while the
request lines themselves are there."""
from __future__ import annotations

import http.cookiejar
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode, urlparse

import pytest

from crm.db import db
from tests.factories import AppealFactory, CitizenFactory

ROOT = Path(__file__).resolve().parents[2]
CANARY_PHONE = "+7 916 480-27-35"
PHONE_NEEDLES = ["9164802735", "916 480", "480-27-35", "4802735", "%2B7916", "+7916"]
CANARY_NAME = "Канареечкин"
NAME_NEEDLES = [CANARY_NAME, CANARY_NAME.lower(), quote(CANARY_NAME), quote(CANARY_NAME).lower(),
                quote(CANARY_NAME.lower()), "Канареечк"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(app_config: dict) -> dict:
    """The subprocess's environment: the same instance, database, key store, Redis and secret."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update({"CRM_INSTANCE_PATH": app_config["INSTANCE_PATH"], "CRM_SECRET_KEY": app_config["SECRET_KEY"],
                "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"],
                "CRM_QUEUE_PREFIX": app_config["CRM_QUEUE_PREFIX"],
                "CRM_CONTROLLER_NAME": app_config["CRM_CONTROLLER_NAME"],
                "CRM_CONTROLLER_ADDRESS": app_config["CRM_CONTROLLER_ADDRESS"],
                "CRM_EXPECTED_CITIZENS": str(app_config["CRM_EXPECTED_CITIZENS"]),
                "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
    if app_config.get("CRM_KEYSTORE_URL"):
        env["CRM_KEYSTORE_URL"] = app_config["CRM_KEYSTORE_URL"]
    if app_config.get("REDIS_URL"):
        env["REDIS_URL"] = app_config["REDIS_URL"]
    else:
        env.pop("REDIS_URL", None)
    return env


def _wait_up(base: str, proc: subprocess.Popen, logs: list[Path]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail("server exited: " + " | ".join(p.read_text(errors="replace")[-2000:] for p in logs if p.exists()))
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.3)
    pytest.fail("server did not start within 60 s")


def _request(base: str, path: str, *, method: str = "GET", headers: dict | None = None, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def _browser(base: str, username: str) -> urllib.request.OpenerDirector:
    """A signed-in staff browser (session cookie) against the real server, CSRF on as in production."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    from tests.mfa import sign_in_http

    assert "/login" not in sign_in_http(opener, base, username), "sign-in failed"  # password, then the second factor
    return opener


def _drive_searches(base: str, canaries: dict) -> None:
    """Appeal and transcript searches carrying the canary phone and surname, in bodies and in URLs."""
    op, sup = canaries["headers"], canaries["supervisor_headers"]
    phrase = f"{CANARY_NAME} {CANARY_PHONE}"
    status, body, headers = _request(base, "/api/v1/appeals?" + urlencode({"q": "8 (916) 480-27-35"}), headers=op)
    assert status == 200 and json.loads(body)["items"] and headers.get("Deprecation"), body
    status, body, _ = _request(base, "/api/v1/appeals?" + urlencode({"q": CANARY_NAME}), headers=op)
    assert status == 200 and json.loads(body)["items"], body
    status, body, _ = _request(base, "/api/v1/appeals/search", method="POST", headers=op, body={"q": CANARY_PHONE})
    assert status == 200 and json.loads(body)["items"], body
    status, body, _ = _request(base, "/api/v1/calls/search", method="POST", headers=sup, body={"q": phrase})
    assert status == 200 and "calls_scanned" in json.loads(body), body
    status, body, _ = _request(base, "/api/v1/calls/search?" + urlencode({"q": phrase}), headers=sup)
    assert status == 400 and json.loads(body)["error"]["code"] == "phrase_in_url", body
    browser = _browser(base, canaries["supervisor"])
    page = browser.open(base + "/calls/search", timeout=30).read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    with browser.open(base + "/calls/search", data=urlencode({"q": phrase, "csrf_token": token}).encode(),
                      timeout=30) as resp:
        assert resp.status == 200 and 'id="search-result"' in resp.read().decode()
    try:
        browser.open(base + "/calls/search?" + urlencode({"q": phrase}), timeout=30)
        pytest.fail("a phrase in the URL was accepted")
    except urllib.error.HTTPError as exc:
        assert exc.code == 400


def _drive_ivr(base: str, ivr_headers: dict) -> None:
    """The IVR's deprecated GET lookups with the canary phone in the query (issue 13 re-audit)."""
    for path in ("/api/v1/ivr/appeal-status?phone=" + quote(CANARY_PHONE), "/api/v1/ivr/outage?phone=89164802735"):
        status, body, headers = _request(base, path, headers=ivr_headers)
        assert status == 200 and "text" in json.loads(body) and headers.get("Deprecation"), body


def _drive(base: str, token_headers: dict, link_path: str) -> None:
    """The requests that carry the canaries."""
    status, body, headers = _request(base, "/api/v1/citizens?phone=" + quote("8 (916) 480-27-35"),
                                     headers=token_headers)
    assert status == 200 and json.loads(body)["items"], body
    assert headers.get("Deprecation")
    status, body, _ = _request(base, "/api/v1/citizens?phone=89164802735", headers=token_headers)
    assert status == 200 and json.loads(body)["items"], body
    status, body, _ = _request(base, "/api/v1/citizens/search", method="POST", headers=token_headers,
                               body={"phone": CANARY_PHONE})
    assert status == 200 and json.loads(body)["items"], body
    status, body, _ = _request(base, link_path)  # GET only looks at the link (does not use it up)
    assert status == 200 and "Продолжить" in body.decode(), body[:500]
    status, _, _ = _request(base, "/static/app.css?v=1", headers={"Referer": base + link_path + "?utm=sms"})
    assert status == 200


def _start(cmd: list[str], env: dict, logs: list[Path]) -> subprocess.Popen:
    out, err = logs[0].open("wb"), logs[1].open("wb")
    try:
        return subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    finally:
        out.close()
        err.close()


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture()
def canaries(ctx, make_user, api_token):
    from crm.consent import selfservice

    canary = CitizenFactory(full_name="Канареечкин Пётр", phone=CANARY_PHONE)
    citizen = CitizenFactory(full_name="Канареечкина Ольга", phone="+7 916 480-27-36")
    op = make_user("operator")
    headers = api_token(op)
    sup = make_user("supervisor")
    AppealFactory(citizen=canary, operator=op)
    with ctx.test_request_context():
        url, _ = selfservice.issue_link(citizen, user=op, base_url="http://localhost", send=False)
    db.session.commit()
    path = urlparse(url).path
    token = path.rsplit("/", 1)[1]
    assert len(token) > 20
    return {"headers": headers, "link_path": path, "token": token, "supervisor": sup.username,
            "supervisor_headers": api_token(sup), "ivr_headers": api_token(make_user("ivr"))}


def _scan(files: list[Path], needles: list[str]) -> str:
    text = ""
    for p in files:
        if p.exists():
            blob = p.read_text(errors="replace")
            for needle in needles:
                assert needle not in blob, f"{needle!r} found in {p.name}:\n{blob[-3000:]}"
            text += blob
    return text


def test_dev_server_and_gunicorn_logs_hold_no_phone_or_link_token(ctx, app_config, canaries, tmp_path):
    env = _env(app_config)
    needles = PHONE_NEEDLES + NAME_NEEDLES + [canaries["token"], canaries["token"][:16]]

    # the development server, as scripts/run.sh starts it
    port = _free_port()
    dev_logs = [tmp_path / "dev.out", tmp_path / "dev.err"]
    dev = _start([sys.executable, "-c", "import sys; from crm.cli import main; sys.exit(main())",
                  "run", "--host", "127.0.0.1", "--port", str(port), "--no-reload", "--no-debugger"], env, dev_logs)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_up(base, dev, dev_logs)
        _drive(base, canaries["headers"], canaries["link_path"])
        _drive_searches(base, canaries)
        _drive_ivr(base, canaries["ivr_headers"])
    finally:
        _stop(dev)

    # gunicorn with the shipped configuration; its own logs and the app's output in files
    port = _free_port()
    gu_logs = [tmp_path / "gunicorn.out", tmp_path / "gunicorn.err"]
    access, errors = tmp_path / "gunicorn-access.log", tmp_path / "gunicorn-error.log"
    gu = _start([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
                 "--workers", "1", "--access-logfile", str(access), "--error-logfile", str(errors),
                 "--log-level", "debug", "--no-control-socket", "wsgi:app"], env, gu_logs)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_up(base, gu, gu_logs + [errors])
        _drive(base, canaries["headers"], canaries["link_path"])
        _drive_searches(base, canaries)
        _drive_ivr(base, canaries["ivr_headers"])
    finally:
        _stop(gu)

    dev_text = _scan(dev_logs, needles)
    gu_text = _scan(gu_logs + [access, errors], needles)
    # the logs are there and name the requests, redacted
    for text, where in ((dev_text, "the development server"), (access.read_text(), "gunicorn's access log")):
        assert "/api/v1/citizens " in text or '/api/v1/citizens"' in text or "/api/v1/citizens HTTP" in text, where
        assert "/api/v1/citizens/search" in text and "/my/link/***" in text, where
        assert "/api/v1/appeals/search" in text and "/api/v1/calls/search" in text and "/calls/search" in text, where
        assert "/api/v1/ivr/appeal-status" in text and "/api/v1/ivr/outage" in text, where
    assert "Booting worker" in gu_text or "Listening at" in gu_text


def test_every_route_with_a_secret_in_its_path_is_redacted(app):
    """A route whose URL variable is a token, code or secret must be listed in crm.weblog.SECRET_PATHS."""
    from crm import weblog

    secret_rules = [r for r in app.url_map.iter_rules() if set(r.arguments) & set(weblog.SECRET_VARIABLES)]
    assert secret_rules, "the self-service link route exists"
    for rule in secret_rules:
        sample = rule.rule
        for arg in rule.arguments:
            sample = sample.replace(f"<{arg}>", "S3cretValue-_.x").replace(f"<string:{arg}>", "S3cretValue-_.x")
        assert "S3cretValue" not in weblog.redact_target(sample), f"{rule.rule} is not in crm.weblog.SECRET_PATHS"
    # the deprecated GET alias says so in the OpenAPI document
    with app.test_request_context():
        doc = app.test_client().get("/api/v1/openapi.json").get_json()
    assert doc["paths"]["/citizens"]["get"]["deprecated"] is True
    assert "deprecated" not in doc["paths"]["/citizens/search"]["post"]
