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


def enrol(user, now: float | None = None) -> str:
    """Set ``user``'s second factor up through the service (crm.users.mfa), as the enrolment page
    does, without a sign-in (no session is made); returns the secret and keeps it and the recovery
    codes for later sign-ins."""
    from crm.users import mfa as service

    secret = service.enrolment_secret(user)
    _LAST_STEP.pop(user.username, None)
    codes = service.confirm_enrolment(user, code_for(user.username, secret, now=now))
    assert codes, "enrolment refused its own code"
    remember(user.username, secret, codes)
    return secret


def _post(client, path: str, data: dict, csrf: bool, kw: dict, page: str | None = None):
    if csrf:
        if page is None:
            page = client.get(path, **kw).get_data(as_text=True)
        data = {**data, "csrf_token": _CSRF_RE.search(page).group(1)}
    return client.post(path, data=data, **kw)


def sign_in_response(client, user, password: str = PASSWORD, *, csrf: bool = False, query_string=None, **kw):
    """Sign ``user`` in through both steps and return the last answer: the code step's redirect
    (302), or after a first sign-in the recovery-codes page (200). ``csrf``: read each form's token
    from its page first (an app with CSRF on); ``kw`` (``headers``, ``base_url`` …) go with every
    request. Asserts every step succeeds."""
    from urllib.parse import urlparse

    username = getattr(user, "username", user)
    first = dict(kw, **({"query_string": query_string} if query_string is not None else {}))
    resp = _post(client, "/login", {"username": username, "password": password}, csrf, first)
    assert resp.status_code == 302, resp.data[:500]
    where = urlparse(resp.headers["Location"]).path
    if where == "/login/enrol":
        page = client.get("/login/enrol", **kw).get_data(as_text=True)
        secret = secret_from_page(page)
        remember(username, secret)
        _LAST_STEP.pop(username, None)
        resp = _post(client, "/login/enrol", {"code": code_for(username, secret)}, csrf, kw, page=page)
        page = resp.get_data(as_text=True)
        assert resp.status_code == 200 and 'id="mfa-recovery-codes"' in page, page[:800]
        remember(username, secret, recovery_codes_from_page(page))
        return resp
    assert where == "/login/code", where
    resp = _post(client, "/login/code", {"code": code_for(username)}, csrf, kw)
    assert resp.status_code == 302 and not urlparse(resp.headers["Location"]).path.startswith("/login"), \
        resp.data[:500]
    return resp


def sign_in(client, user, password: str = PASSWORD, query_string=None, **kw) -> str:
    """Sign ``user`` (a user or a user name) in on the test ``client`` (any object with ``get`` and
    ``post`` like the Flask test client) through both steps; returns where the app sends them next.
    Asserts every step succeeds."""
    resp = sign_in_response(client, user, password, query_string=query_string, **kw)
    if resp.status_code == 200:  # the recovery codes after enrolment: their «continue» link
        return html.unescape(_CONTINUE_RE.search(resp.get_data(as_text=True)).group(1))
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
