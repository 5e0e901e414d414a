"""Every HTML form gets hostile input and no answer may be a 5xx (issue 17 point 6).

The forms are found, not listed: every HTML page of ``app.url_map`` that a GET can open is rendered
for each role the policy (crm/security/policy.py) allows on it — and the public pages for an anonymous
visitor — with the seeded objects of the ``world`` fixture (tests/security/test_audit_completeness.py);
each ``<form>`` on it (POST or GET, its action resolved) is parsed with its fields. A new page with a
form is therefore fuzzed without anyone adding it here.

Each form is then submitted by the role that saw it, hidden fields kept as rendered (CSRF is off in the
test app), with these variants for the visible fields:

- ``nul``: a NUL character in every text field (refused 400 by crm.security.inputs);
- ``emoji``: emoji, a zero-width joiner and a right-to-left mark in every text field;
- ``long``: text fields 100 kB long (50,000 «Ж», UTF-8), three a request, the others plausible;
- ``year0`` / ``year1`` / ``year99999``: every date and date-time field «0000-01-01» / «0001-01-01» /
  «99999-12-31»;
- ``negative`` / ``huge``: every number field -2147483649 / 10**30 (selects get a value not offered).

The answer must be below 500 (a 400 with a message, a redirect back with a flash, a 413 …). Sign-out
forms are skipped (they would end the client's session). Counts are printed.
"""
from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser
from urllib.parse import urljoin, urlparse

from crm.security import policy
from tests.security.test_audit_completeness import fresh_user, world  # noqa: F401  (the fixture)
from tests.security.test_policy_matrix import DUMMY_ARGS, EXTRA_ARGS, _fill, _seed_more

TEXT_TYPES = {"text", "search", "tel", "email", "password", "url", "textarea", ""}
DATE_TYPES = {"date", "datetime-local", "month", "time"}
NUMBER_TYPES = {"number", "range"}
SKIP_ACTIONS = {"/logout", "/my/logout"}
PLAUSIBLE = {"date": "2026-03-02", "datetime-local": "2026-03-02T10:00", "month": "2026-03", "time": "10:00",
             "number": "1", "range": "1", "email": "test@example.ru", "tel": "+7 912 555-44-33"}
EMOJI = "🏠🔥💧 Тест 👨‍👩‍👧 \u200f\u200d 👍🏻"
LONG = "Ж" * 50_000


class _Forms(HTMLParser):
    """The ``<form>`` s of a page: ``[{"action", "method", "fields": [(name, type, value, options)]}]``."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms, self._form, self._select, self._textarea = [], None, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = {"action": a.get("action") or "", "method": (a.get("method") or "get").lower(),
                          "fields": []}
            self.forms.append(self._form)
        elif self._form is None or not a.get("name"):
            return
        elif tag == "input":
            kind = (a.get("type") or "text").lower()
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio") and any(f[0] == a["name"] for f in self._form["fields"]):
                return
            self._form["fields"].append([a["name"], kind, a.get("value") or ("y" if kind == "checkbox" else ""), []])
        elif tag == "textarea":
            self._textarea = [a["name"], "textarea", "", []]
            self._form["fields"].append(self._textarea)
        elif tag == "select":
            self._select = [a["name"], "select", "", []]
            self._form["fields"].append(self._select)
        if tag == "option" and self._select is not None:
            self._select[3].append(a.get("value", ""))
            if not self._select[2] or "selected" in a:
                self._select[2] = a.get("value", "")

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[2] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def _plausible(kind: str, value: str) -> str:
    return value or PLAUSIBLE.get(kind, "Тест")


def _variants(fields):
    """``(name, data)`` pairs: the hostile submissions of a form's ``fields``."""
    def base(**override):
        return {n: override.get(k, _plausible(k, v)) if k != "hidden" else v for n, k, v, _ in fields}

    visible_text = [f for f in fields if f[1] in TEXT_TYPES]
    dates = [f for f in fields if f[1] in DATE_TYPES]
    numbers = [f for f in fields if f[1] in NUMBER_TYPES or f[1] == "select"]
    if visible_text:
        yield "nul", {**base(), **{n: "Тест\x00значение" for n, *_ in visible_text}}
        yield "emoji", {**base(), **{n: EMOJI for n, *_ in visible_text}}
        for i in range(0, len(visible_text), 3):  # three 100 kB fields a request: under the form size limit
            chunk = [n for n, *_ in visible_text[i:i + 3]]
            yield f"long:{','.join(chunk)}", {**base(), **{n: LONG for n in chunk}}
    if dates:
        yield "year0", {**base(), **{n: "0000-01-01" + ("T00:00" if k == "datetime-local" else "")
                                      for n, k, *_ in dates}}
        yield "year1", {**base(), **{n: "0001-01-01" + ("T00:00" if k == "datetime-local" else "")
                                      for n, k, *_ in dates}}
        yield "year99999", {**base(), **{n: "99999-12-31" + ("T23:59" if k == "datetime-local" else "")
                                          for n, k, *_ in dates}}
    if numbers:
        yield "negative", {**base(), **{n: "-2147483649" for n, *_ in numbers}}
        yield "huge", {**base(), **{n: str(10**30) for n, *_ in numbers}}


def _pages(ctx, w):
    """``(who, client, url)`` for every HTML GET page of the URL map and every identity allowed on it."""
    from tests.security.test_policy_matrix import _identities

    html, _ = _identities(ctx, w)
    for rule in sorted(ctx.url_map.iter_rules(), key=lambda r: r.endpoint):
        if "GET" not in rule.methods or rule.rule.startswith(("/api/", "/static/")) or rule.endpoint == "static":
            continue
        p = policy.rule_for(rule.endpoint)
        if p is None:
            continue
        with ctx.test_request_context():
            url, _ = _fill(rule, w.args)
        whos = ["anonymous"] if p.kind == "public" else [r for r in p.roles if r in w.clients]
        for who in whos:
            yield who, html[who][0], url


def test_every_form_takes_hostile_input_without_a_server_error(ctx, world, monkeypatch, capsys):  # noqa: F811
    _seed_more(ctx, world)
    forms: dict[tuple[str, str, str], tuple] = {}
    pages = 0
    for who, client, url in _pages(ctx, world):
        fresh_user()
        resp = client.get(url)
        fresh_user()
        if resp.status_code != 200 or resp.mimetype != "text/html":
            continue
        pages += 1
        parser = _Forms()
        parser.feed(resp.get_data(as_text=True))
        for form in parser.forms:
            action = urlparse(urljoin(url, form["action"] or url)).path
            if action in SKIP_ACTIONS or not form["fields"]:
                continue
            names = tuple(sorted(f[0] for f in form["fields"]))
            forms.setdefault((form["method"], action, names), (who, client, form["fields"]))

    counts, statuses, failures = Counter(), Counter(), []
    for (method, action, _), (who, client, fields) in sorted(forms.items(), key=lambda kv: kv[0]):
        counts["forms"] += 1
        for variant, data in _variants(fields):
            fresh_user()
            if method == "post":
                resp = client.post(action, data=data)
            else:
                resp = client.get(action, query_string=data)
            resp.get_data()
            fresh_user()
            counts["cases"] += 1
            statuses[resp.status_code // 100 * 100] += 1
            if resp.status_code >= 500:
                failures.append(f"{method.upper()} {action} as {who}, {variant}: {resp.status_code}")
    with capsys.disabled():
        print(f"\nform fuzz: {pages} pages rendered, {counts['forms']} forms (distinct by action and fields), {counts['cases']} cases, "
              f"{len(failures)} failures (5xx); answers by class: {dict(sorted(statuses.items()))}")
    assert counts["forms"] >= 40 and counts["cases"] >= 200, counts
    assert not failures, f"{len(failures)} form submissions answered 5xx:\n" + "\n".join(failures)
