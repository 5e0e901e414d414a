"""The authorization policy (crm/security/policy.py), tested from ``app.url_map``: every route × every
role, so a route added without a rule fails here with its endpoint's name.

Identities: anonymous, and one signed-in client (HTML) / bearer token (``/api/v1``) per role of
:data:`crm.security.permissions.ROLES`. Path parameters are the seeded objects of the ``world`` fixture
(tests/security/test_audit_completeness.py: a citizen with an appeal handed over to the executor's
service, a transcribed call of the operator with an evaluation, a consent, a data subject request, a
calibration session …) plus an incident and a knowledge-base article made here; any other parameter
gets a dummy of the converter's type (so routing still matches and the policy is reached).

What counts (per request):
- **denied** (a role not in the table's rule): 403 for a signed-in role; anonymous: 401 under
  ``/api/`` and a redirect to the sign-in page for HTML. Anything else — including 404 — fails: the
  policy runs before the view, so a denied role must never learn whether an object exists.
- **allowed** (a role of the rule, or anyone on a public route): not 401 / 403, not a redirect to the
  sign-in page, not 500. A 404 is accepted only when a path parameter was a dummy; with every parameter
  a seeded object, 404 fails (the view refused an allowed role after all). Validation answers (400, 422,
  a redirect back with a message) count as allowed: the request got past the policy.
- **citizen** routes (the data subject's self-service): no staff role and no anonymous caller has a
  citizen session: never a 2xx.
- **signed** routes (machine callbacks): without the signature / shared token, refused for everyone
  (401 or 403), a staff token does not replace it.
"""
from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest
from werkzeug.routing import IntegerConverter

from crm.security import policy
from crm.security.permissions import ROLES
from tests.security.test_audit_completeness import fresh_user, world  # noqa: F401  (the fixture)

ANON = "anonymous"
DUMMY_STR = "no-such-object-0"
DUMMY_INT = 987654
#: URL arguments with a real value that is not an object id (a calendar day, a template key …).
EXTRA_ARGS = {"day": "2026-01-05", "step": "accept", "decision": "approve", "version": 1,
              "provider": "smsru", "key": "status:sms"}
#: Parameters whose seeded value of the same name is another kind of id: a dummy instead.
DUMMY_ARGS = {
    # the PBX's callId, not the recording's id; no PBX call is seeded
    "api_telephony.telephony_call": {"call_id"}, "telephony.callback_attempt": {"call_id"},
    "telephony.callback_reveal": {"call_id"},
}
#: Allowed requests that answer 404 with seeded parameters, with the reason (the request carries no
#: form data, and the object the form names is therefore not found).
EMPTY_FORM_404 = {"qa.calibration_list": "POST opens a session for the call named in the form: none given",
                  "telephony.pop_card": "no screen pop waits for the requesting user: 404 by design"}
#: Run last: they end the client's session.
LAST = ("users.logout", "selfservice.logout")


def _seed_more(ctx, w) -> None:
    """An incident and a knowledge-base article (their routes take ``<int:...>`` ids)."""
    from datetime import datetime, timezone

    from crm.incidents import services as incidents
    from crm.kb import services as kb

    incident = incidents.create(w.users["supervisor"], topic="heating", text="Плановое отключение отопления",
                                starts_at=datetime.now(timezone.utc), addresses=[], street="ул. Ленина")
    article = kb.create(w.users["supervisor"], title="Нет отопления", body="Что сказать заявителю", topic="heating")
    w.args.update(incident_id=incident.id, article_id=article.id)


def _fill(rule, args: dict) -> tuple[str, bool]:
    """``(url, dummy)``: the rule's URL with seeded values, and whether any parameter had to be a dummy."""
    from flask import url_for

    values, dummy = {}, False
    for name in rule.arguments:
        conv = rule._converters[name]
        value = None if name in DUMMY_ARGS.get(rule.endpoint, ()) else args.get(name, EXTRA_ARGS.get(name))
        if value is None or (isinstance(conv, IntegerConverter) and not isinstance(value, int)):
            value, dummy = (DUMMY_INT if isinstance(conv, IntegerConverter) else DUMMY_STR), True
        values[name] = value
    return url_for(rule.endpoint, **values), dummy


def _to_login(resp) -> bool:
    return resp.status_code in (301, 302, 303) and urlparse(resp.headers.get("Location", "")).path == "/login"


def _judge(endpoint: str, kind: str, allowed: bool, who: str, api: bool, resp, dummy: bool) -> str | None:
    """None when ``resp`` is what the policy says, else the problem. ``who``: a role, or :data:`ANON`
    (also the ivr role's token on an HTML page: pages take no token)."""
    status = resp.status_code
    if kind == "public":  # the sign-in redirect is a public page's own answer (``/`` and sign-out)
        return None if status not in (401, 403) and (status < 500 or status == 503) else f"public, answered {status}"
    if kind == "signed":
        return None if status in (401, 403) else f"unsigned request answered {status}, expected 401/403"
    if kind == "citizen":
        return None if not 200 <= status < 300 else f"answered {status} without a citizen session"
    if allowed:
        if status in (401, 403) or _to_login(resp):
            return f"allowed by the table but refused ({status} {resp.headers.get('Location', '')})"
        if status >= 500 and status != 503:
            return f"allowed, answered {status}"
        if status == 404 and not dummy and endpoint not in EMPTY_FORM_404:
            return "allowed, but 404 with every path parameter a seeded object"
        return None
    if who == ANON:
        ok = status == 401 if api else _to_login(resp)
        return None if ok else f"anonymous not refused: {status} (expected {'401' if api else 'sign-in redirect'})"
    return None if status == 403 else f"denied by the table but answered {status}"


def _identities(ctx, w):
    """who → (client, headers) for HTML and for the API."""
    html = {ANON: (ctx.test_client(), {})}
    api = {ANON: (ctx.test_client(), {})}
    for role in ROLES:
        api[role] = (ctx.test_client(), w.headers[role])
        # the ivr role is a machine client with no sign-in: on HTML pages it carries its token, which
        # pages ignore
        html[role] = (w.clients[role], {}) if role in w.clients else (ctx.test_client(), w.headers[role])
    return html, api


def test_every_route_has_a_rule_and_the_decorators_agree(ctx):
    """A route with no rule, a stale rule, or a view decorator naming other roles than the table."""
    routed = {r.endpoint for r in ctx.url_map.iter_rules()}
    missing = sorted(routed - set(policy.POLICY))
    assert not missing, ("routes with no rule in crm/security/policy.py POLICY (every request to them is refused "
                         "403 until they have one): " + ", ".join(missing))
    stale = sorted(set(policy.POLICY) - routed)
    assert not stale, "rules in crm/security/policy.py for endpoints that no longer exist: " + ", ".join(stale)
    disagree = []
    for endpoint in sorted(routed):
        rule = policy.POLICY[endpoint]
        declared = set(getattr(ctx.view_functions[endpoint], "crm_roles", ()) or ())
        if not declared and set(rule.roles) == set(policy.SIGNED_IN):
            continue  # a login_required page for any signed-in staff member (policy.signed_in)
        if declared != set(rule.roles):
            disagree.append(f"{endpoint}: decorator {sorted(declared)} vs table {sorted(rule.roles)} ({rule.kind})")
    assert not disagree, "view decorators disagree with the policy table:\n" + "\n".join(disagree)


def test_policy_matrix_every_route_every_role(ctx, world, monkeypatch):  # noqa: F811
    monkeypatch.setitem(ctx.config, "CRM_TELEPHONY_SECRET", "policy-test-secret")
    monkeypatch.setitem(ctx.config, "CRM_SMS_CALLBACK_TOKEN", "policy-test-token")
    _seed_more(ctx, world)
    html, api = _identities(ctx, world)
    rules = sorted((r for r in ctx.url_map.iter_rules() if r.endpoint in policy.POLICY),
                   key=lambda r: (r.endpoint in LAST, "GET" not in r.methods, r.endpoint, r.rule))
    problems, counts = [], {"allowed": 0, "denied": 0, "citizen": 0, "signed": 0, "404": 0}
    for rule in rules:
        p = policy.POLICY[rule.endpoint]
        is_api = rule.rule.startswith("/api/")
        with ctx.test_request_context():
            url, dummy = _fill(rule, world.args)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for who, (client, headers) in (api if is_api else html).items():
                if rule.endpoint in LAST and who != ANON and not is_api:
                    continue  # below, once every other route is done
                # the ivr role's token on an HTML page is no sign-in: judged as anonymous there
                judged_as = ANON if (who == "ivr" and not is_api) else who
                allowed = p.kind == "public" or (p.kind == "staff" and judged_as != ANON and p.allows(who))
                fresh_user()
                resp = client.open(url, method=method, headers=headers)
                resp.get_data()
                fresh_user()
                counts[p.kind if p.kind in ("citizen", "signed") else ("allowed" if allowed else "denied")] += 1
                counts["404"] += resp.status_code == 404 and allowed
                problem = _judge(rule.endpoint, p.kind, allowed, judged_as, is_api, resp, dummy)
                if problem:
                    problems.append(f"{method} {rule.rule} ({rule.endpoint}) as {who}: {problem}")
    for endpoint in LAST:  # sign-out as each role, last
        for who, (client, headers) in html.items():
            fresh_user()
            resp = client.post(f"/{'my/' if endpoint.startswith('selfservice') else ''}logout", headers=headers)
            fresh_user()
            counts["allowed"] += 1
            if problem := _judge(endpoint, "public", True, who, False, resp, False):
                problems.append(f"POST ({endpoint}) as {who}: {problem}")
    print(f"\npolicy matrix: {sum(v for k, v in counts.items() if k != '404')} requests: {counts}")
    assert not problems, f"{len(problems)} policy mismatches:\n" + "\n".join(problems)
    assert counts["denied"] > 500 and counts["allowed"] > 300, counts


def test_the_hook_reads_the_table_not_the_decorator(ctx, world, monkeypatch):  # noqa: F811
    """Narrowing a rule in the table refuses a role the view's decorator still allows."""
    operator = world.clients["operator"]
    fresh_user()
    assert operator.get("/kb").status_code == 200
    monkeypatch.setitem(policy.POLICY, "kb.kb_list", policy.staff("supervisor"))
    fresh_user()
    assert operator.get("/kb").status_code == 403
    resp = ctx.test_client().get("/api/v1/kb/search", query_string={"q": "x"}, headers=world.headers["operator"])
    assert resp.status_code == 200  # another endpoint, untouched
    monkeypatch.setitem(policy.POLICY, "api_kb.kb_search", policy.staff("supervisor"))
    resp = ctx.test_client().get("/api/v1/kb/search", query_string={"q": "x"}, headers=world.headers["operator"])
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "forbidden"


def test_a_route_with_no_rule_is_refused(app_config, caplog):
    """Fail closed: an endpoint missing from the table answers 403 to everyone (JSON under /api/) and
    logs the endpoint's name."""
    from flask import Blueprint

    from crm import create_app

    app = create_app({**app_config, "WTF_CSRF_ENABLED": False})
    bp = Blueprint("unruled", __name__)
    bp.add_url_rule("/unruled-page", "page", lambda: "open")
    bp.add_url_rule("/api/v1/unruled", "api", lambda: {"open": True})
    app.register_blueprint(bp)
    client = app.test_client()
    with caplog.at_level("ERROR"):
        assert client.get("/unruled-page").status_code == 403
        resp = client.get("/api/v1/unruled")
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "no_policy"
    assert "unruled.page" in caplog.text and "crm/security/policy.py" in caplog.text


def test_scopes_are_documented():
    """Every scope the table uses says which service enforces it."""
    used = {s for rule in policy.POLICY.values() for s in rule.scopes.values()}
    assert used <= set(policy.SCOPES)
    for scope in used - {"all"}:
        assert re.search(r"crm\.\w+", policy.SCOPES[scope]), scope
    with pytest.raises(ValueError):
        policy.staff("operator", janitor="all")
