"""Staff sign-in for tests through the real two-step flow (issue 17): password, then the second
factor. A first sign-in enrols: the secret is read from the enrolment page (``data-secret`` of
``#totp-secret``, what a person would type into the app) and the code computed with pyotp; the
recovery codes the page shows once are kept. Later sign-ins compute the code from that secret.

The server refuses a time step already used (no replay), so a second sign-in within the same 30 s
uses the next step (the server accepts one step either side of now) and a third one a recovery code.
There is no bypass in the application: everything here is what a staff member does."""
from __future__ import annotations

import html
import re
import time

import pyotp

PASSWORD = "correct-horse-1"
STEP_S = 30

_SECRETS: dict[str, str] = {}
_RECOVERY: dict[str, list[str]] = {}
_LAST_STEP: dict[str, int] = {}

_SECRET_RE = re.compile(r'data-secret="([A-Z2-7]+)"')
_CODES_RE = re.compile(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>")
_CONTINUE_RE = re.compile(r'id="mfa-continue" href="([^"]*)"')


def secret_from_page(page: str) -> str:
    """The TOTP secret shown on the enrolment page."""
    found = _SECRET_RE.search(page)
    assert found, "the enrolment page shows no secret: " + page[:500]
    return found.group(1)


def recovery_codes_from_page(page: str) -> list[str]:
    """The recovery codes shown once after enrolment."""
    return _CODES_RE.findall(page)


def remember(username: str, secret: str, recovery: list[str] | None = None) -> None:
    """Keep ``username``'s secret (and recovery codes) for later sign-ins."""
    _SECRETS[username] = secret
    if recovery is not None:
        _RECOVERY[username] = list(recovery)


def secret_of(username: str) -> str:
    return _SECRETS[username]


def code_for(username: str, secret: str | None = None, now: float | None = None) -> str:
    """A code the server has not seen for ``username``: the current step's, else the next step's,
    else an unspent recovery code (raises AssertionError when none is left)."""
    secret = secret or _SECRETS[username]
    step = int(time.time() if now is None else now) // STEP_S
    last = _LAST_STEP.get(username, -1)
    for candidate in (step, step + 1):
        if candidate > last:
            _LAST_STEP[username] = candidate
            return pyotp.TOTP(secret).generate_otp(candidate)
    codes = _RECOVERY.get(username) or []
    assert codes, f"{username}: every code of this half-minute is used and no recovery code is left"
    return codes.pop(0)


def note_used_step(username: str, step: int) -> None:
    """Tell the helper a step was used outside it (a test that typed a code itself)."""
    _LAST_STEP[username] = max(step, _LAST_STEP.get(username, -1))


def sign_in(client, user, password: str = PASSWORD, query_string=None) -> str:
    """Sign ``user`` (a user or a user name) in on the test ``client`` (any object with ``get`` and
    ``post`` like the Flask test client) through both steps; returns where the app sends them next.
    Asserts every step succeeds."""
    username = getattr(user, "username", user)
    resp = client.post("/login", data={"username": username, "password": password},
                       **({"query_string": query_string} if query_string is not None else {}))
    assert resp.status_code == 302, resp.data[:500]
    where = resp.headers["Location"]
    if where.endswith("/login/enrol"):
        page = client.get("/login/enrol").get_data(as_text=True)
        secret = secret_from_page(page)
        remember(username, secret)
        _LAST_STEP.pop(username, None)
        resp = client.post("/login/enrol", data={"code": code_for(username, secret)})
        page = resp.get_data(as_text=True)
        assert resp.status_code == 200 and 'id="mfa-recovery-codes"' in page, page[:800]
        remember(username, secret, recovery_codes_from_page(page))
        return html.unescape(_CONTINUE_RE.search(page).group(1))
    assert where.endswith("/login/code"), where
    resp = client.post("/login/code", data={"code": code_for(username)})
    assert resp.status_code == 302 and not resp.headers["Location"].endswith(("/login", "/login/code")), \
        resp.data[:500]
    return resp.headers["Location"]


_CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def sign_in_http(opener, base: str, username: str, password: str = PASSWORD) -> str:
    """:func:`sign_in` over real HTTP with CSRF on (``opener``: a urllib opener with a cookie jar,
    ``base``: the server's URL); returns the URL of the page reached after signing in."""
    from urllib.parse import urlencode

    def form(path: str, fields: dict) -> tuple[str, str]:
        page = opener.open(base + path, timeout=30).read().decode()
        token = _CSRF_RE.search(page).group(1)
        with opener.open(base + path, data=urlencode({**fields, "csrf_token": token}).encode(), timeout=30) as resp:
            return resp.geturl(), resp.read().decode()

    url, page = form("/login", {"username": username, "password": password})
    if url.endswith("/login/enrol"):
        secret = secret_from_page(page)
        remember(username, secret)
        _LAST_STEP.pop(username, None)
        token = _CSRF_RE.search(page).group(1)
        with opener.open(base + "/login/enrol", data=urlencode({"code": code_for(username, secret),
                                                                 "csrf_token": token}).encode(), timeout=30) as resp:
            page = resp.read().decode()
        assert 'id="mfa-recovery-codes"' in page, page[:800]
        remember(username, secret, recovery_codes_from_page(page))
        return base + html.unescape(_CONTINUE_RE.search(page).group(1))
    assert url.endswith("/login/code"), url
    token = _CSRF_RE.search(page).group(1)
    with opener.open(base + "/login/code", data=urlencode({"code": code_for(username), "csrf_token": token}).encode(),
                     timeout=30) as resp:
        assert "/login" not in resp.geturl(), "the second factor was refused"
        return resp.geturl()
