"""Sign-in throttling under ``gunicorn -w 4`` (issue 17 point 3): twelve operators signing in from one
address at the same moment all get in, while a guessing loop against one account, run at the same
time from the same address, is slowed down with growing ``Retry-After``. Before, the limit counted
per process and per address: 4 workers let 28 guesses through and the office locked itself out.

The server is the shipped gunicorn configuration against this run's throwaway database and the
Redis of ``REDIS_URL`` (or the embedded one), with a key prefix of its own; CSRF on, as in production.
"""
from __future__ import annotations

import http.cookiejar
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

from crm.db import db
from crm.security.models import AccessLogEntry
from tests import mfa as helper
from tests.security.test_request_log_leaks import ROOT, _env, _free_port, _start, _stop, _wait_up

OPERATORS = 12
GUESSERS = 4  # parallel guessing threads: the loop must be faster than the delays it meets
GUESS_MAX_S = 120.0


def _opener():
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))


def _guess(base: str, username: str, stop: threading.Event, out: list, lock: threading.Lock, t0: float) -> None:
    """POST wrong passwords for ``username`` in a tight loop until ``stop``; appends ``(t, status,
    Retry-After)`` to ``out``."""
    opener = _opener()
    page = opener.open(base + "/login", timeout=60).read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    while not stop.is_set():
        data = urlencode({"username": username, "password": secrets.token_hex(6), "csrf_token": token}).encode()
        try:
            with opener.open(base + "/login", data=data, timeout=60) as resp:
                resp.read()
                row = (time.monotonic() - t0, resp.status, None)
        except urllib.error.HTTPError as exc:
            exc.read()
            retry = exc.headers.get("Retry-After")
            row = (time.monotonic() - t0, exc.code, int(retry) if retry else None)
        with lock:
            out.append(row)
        time.sleep(0.05)


def test_an_office_signs_in_while_a_guessing_loop_is_slowed(ctx, app_config, make_user, tmp_path):
    from crm.jobs import redis_connection

    staff = [make_user("operator") for _ in range(OPERATORS)]
    target = make_user("operator")
    for user in staff:  # enrolled before the shift (the first sign-in of each); at shift start: password + code
        helper.sign_in(ctx.test_client(), user)
    names, target_name = [u.username for u in staff], target.username
    db.session.commit()
    db.session.remove()

    env = _env(app_config)
    prefix = f"test-gu-{secrets.token_hex(4)}-"
    env.update({"CRM_QUEUE_PREFIX": prefix, "CRM_LOGIN_THROTTLE": "1", "WEB_CONCURRENCY": "4"})
    port = _free_port()
    logs = [tmp_path / "gunicorn.out", tmp_path / "gunicorn.err"]
    gu = _start([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}",
                 "--workers", "4", "--no-control-socket", "wsgi:app"], env, logs)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base, gu, logs)
        stop, lock, guesses = threading.Event(), threading.Lock(), []
        t0 = time.monotonic()
        with ThreadPoolExecutor(max_workers=OPERATORS + GUESSERS) as pool:
            loops = [pool.submit(_guess, base, target_name, stop, guesses, lock, t0) for _ in range(GUESSERS)]
            time.sleep(0.5)  # the loop is running when the shift starts
            started = time.monotonic()
            shift = [pool.submit(helper.sign_in_http, _opener(), base, name) for name in names]
            landed = [f.result(timeout=300) for f in shift]
            shift_s = time.monotonic() - started
            # let the loop run on until it has met a delay of 8 s (2, 4, 8: grown twice), or give up
            while time.monotonic() - t0 < GUESS_MAX_S:
                with lock:
                    if any(r and r >= 8 for _, _, r in guesses):
                        break
                time.sleep(0.2)
            stop.set()
            for f in loops:
                f.result(timeout=120)
            elapsed = time.monotonic() - t0
    finally:
        _stop(gu)
        conn = redis_connection(ctx)
        keys = list(conn.scan_iter(f"*{prefix}*"))
        if keys:
            conn.delete(*keys)

    # every operator is in (their home page, not a sign-in page)
    assert all("/login" not in url for url in landed), landed
    # the guessing loop: most attempts refused; the passes are the free ones, then one per delay waited out
    guesses.sort()
    checked = [g for g in guesses if g[1] == 200]
    refused = [g for g in guesses if g[1] == 429]
    assert len(guesses) == len(checked) + len(refused), guesses
    waits = sorted({r for _, _, r in refused})
    print(f"\n{OPERATORS} operators signed in from one address in {shift_s:.2f} s (4 gunicorn workers, "
          f"{GUESSERS} guessing threads meanwhile); guessing loop: {len(guesses)} attempts in {elapsed:.1f} s, "
          f"{len(checked)} passwords checked, {len(refused)} refused (429); Retry-After seen: {waits}")
    assert refused and max(waits) >= 8, guesses  # the delay grew: 2 s, 4 s, 8 s
    # after the 3 free failures the k-th check needs 2 + 4 + … + 2**k s to have passed: an upper bound on
    # the checks whatever the machine's speed (the reservation is atomic across the 4 workers)
    delays = 0
    while 2 ** (delays + 2) - 2 <= elapsed:
        delays += 1
    assert len(checked) <= 3 + delays, (len(checked), delays, guesses)
    # each refused attempt is in the access log
    db.session.expire_all()
    logged = db.session.execute(db.select(db.func.count()).select_from(AccessLogEntry).where(
        AccessLogEntry.action == "auth.login_throttled", AccessLogEntry.actor == target_name)).scalar_one()
    assert logged == len(refused)
