"""Browser-test fixtures: a real live server with real CSRF, and Debian's headless Chromium.

The live server is a second app built from the same ``app_config`` as the ``app`` fixture (same
database, instance folder, keys and Redis), with ``WTF_CSRF_ENABLED`` on. It runs in a background
thread on 127.0.0.1 and a free port. Users made with ``make_user`` are visible to it; rows are wiped
after each test by ``ctx`` as usual.
"""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path("/tmp/shots")


@pytest.fixture(scope="session")
def live_server(app, app_config):
    """Base URL (``http://127.0.0.1:<port>``) of the app served by werkzeug in a daemon thread.

    Depends on ``app`` so the database is migrated before the first request."""
    from werkzeug.serving import make_server

    from crm import create_app

    live = create_app({**app_config, "WTF_CSRF_ENABLED": True})
    server = make_server("127.0.0.1", 0, live, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="crm-live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()
    with live.app_context():
        from crm.db import db

        db.engine.dispose()


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium driven by Playwright (headless); skips when either is missing."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    pw = sync_api.sync_playwright().start()
    browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
    pw.stop()


@pytest.fixture()
def new_page(chromium, live_server):
    """Factory of pages, each in its own browser context (own cookies); all closed after the test.

    Every page records console errors and failed requests in ``page.crm_problems``."""
    contexts = []

    def make(**context_options):
        context = chromium.new_context(base_url=live_server, locale="ru-RU", **context_options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.crm_problems = []
        page.on("console", lambda m: m.type == "error" and page.crm_problems.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: page.crm_problems.append(f"page error: {e}"))
        page.on("response", lambda r: r.status >= 500 and page.crm_problems.append(f"{r.status} {r.url}"))
        return page

    yield make
    for context in contexts:
        context.close()


def second_factor(page, username: str) -> None:
    """The second sign-in step in the browser (issue 17): on the enrolment page read the secret a
    person would type into their app, type the code pyotp makes from it, note the recovery codes and
    continue; on the code page type the next unused code (tests.mfa)."""
    from tests import mfa

    if page.url.endswith("/login/enrol"):
        secret = page.locator("#totp-secret").get_attribute("data-secret")
        mfa.remember(username, secret)
        page.get_by_label("Код").fill(mfa.code_for(username, secret))
        page.get_by_role("button", name="Подтвердить").click()
        page.wait_for_load_state()
        mfa.remember(username, secret, [c.strip() for c in page.locator(".recovery-codes code").all_inner_texts()])
        page.locator("#mfa-continue").click()
        page.wait_for_load_state()
    elif page.url.endswith("/login/code"):
        page.get_by_label("Код").fill(mfa.code_for(username))
        page.get_by_role("button", name="Войти").click()
        page.wait_for_load_state()


@pytest.fixture()
def sign_in():
    """Sign ``username`` in on ``page`` through the login form and the second factor; returns the page."""
    def do(page, username: str, password: str = "correct-horse-1"):
        page.goto("/login")
        page.get_by_label("Логин").fill(username)
        page.get_by_label("Пароль").fill(password)
        page.get_by_role("button", name="Войти").click()
        page.wait_for_load_state()
        second_factor(page, username)
        assert "/login" not in page.url, page.content()[:2000]
        return page
    return do


@pytest.fixture()
def shots_dir():
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
