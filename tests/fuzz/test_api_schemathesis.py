"""Schemathesis against ``/api/v1/openapi.json``, in-process (the WSGI app of the test run: PostgreSQL in
CI): every operation of the document gets generated requests, authenticated with a token of a role the
policy allows on it (crm/security/policy.py; admin first, then supervisor, operator, executor, dpo, ivr),
and no answer may be a 5xx (schemathesis' ``not_a_server_error``). Half of the cases of an operation
with path parameters aim at the seeded objects of the ``world`` fixture (a citizen, an appeal, a call,
a consent …) so the handlers' own code runs, not only the 404 of an unknown id.

Bounded: ``CRM_FUZZ_EXAMPLES`` cases per operation (default 12; the run stays well under 3 minutes on
two cores), deterministic (``derandomize``). The counts are printed: operations, cases, failures.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from crm.security import policy
from tests.security.test_audit_completeness import fresh_user, world  # noqa: F401  (the fixture)

EXAMPLES = int(os.environ.get("CRM_FUZZ_EXAMPLES", "12"))
ROLE_PREFERENCE = ("admin", "supervisor", "operator", "executor", "dpo", "ivr")
SECRET = "fuzz-telephony-secret"


def _role_for(endpoint: str) -> str | None:
    rule = policy.rule_for(endpoint)
    if rule is None or rule.kind != "staff":
        return None
    return next(r for r in ROLE_PREFERENCE if r in rule.roles)


def _endpoints(app) -> dict[tuple[str, str], str]:
    """(METHOD, /path/{param}) → Flask endpoint."""
    import re

    out = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule[len("/api/v1"):])
            for m in rule.methods - {"HEAD", "OPTIONS"}:
                out[(m, path)] = rule.endpoint
    return out


def test_api_schemathesis_finds_no_server_error(ctx, world, monkeypatch, capsys):  # noqa: F811
    monkeypatch.setitem(ctx.config, "CRM_TELEPHONY_SECRET", SECRET)
    monkeypatch.setitem(ctx.config, "CRM_SMS_CALLBACK_TOKEN", "fuzz-token")
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", ctx)
    endpoints = _endpoints(ctx)
    seeded = {k: str(v) for k, v in world.args.items()}
    counts, failures, statuses = Counter(), [], Counter()

    for result in schema.get_all_operations():
        op = result.ok()
        endpoint = endpoints[(op.method.upper(), op.path)]
        role = _role_for(endpoint)
        headers = dict(world.headers[role]) if role else {}
        counts["operations"] += 1
        names = [p.name for p in op.path_parameters]
        fixed = {n: seeded[n] for n in names if n in seeded}

        strategy = op.as_strategy()
        if fixed:
            strategy = st.one_of(strategy, op.as_strategy(path_parameters=fixed))

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=strategy)
        def run(case):
            counts["cases"] += 1
            kwargs = {}
            if endpoint == "api_telephony.telephony_event" and case.body is not None:
                raw = json.dumps(case.body).encode()
                sig = hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
                kwargs = {"headers": {**headers, "X-CRM-Signature": f"sha256={sig}",
                                      "Content-Type": "application/json"}, "data": raw}
                fresh_user()
                resp = ctx.test_client().post("/api/v1" + case.formatted_path, **kwargs)
                status = resp.status_code
            else:
                fresh_user()
                resp = case.call(headers=headers)
                status = resp.status_code
            fresh_user()
            statuses[status // 100 * 100] += 1
            if status >= 500:
                failures.append(f"{op.method.upper()} {op.path} ({endpoint}) → {status}: "
                                f"path={case.path_parameters} query={case.query} body={str(case.body)[:300]!r} "
                                f"answer={resp.content[:300] if hasattr(resp, 'content') else resp.data[:300]!r}")

        run()

    with capsys.disabled():
        print(f"\nschemathesis: {counts['operations']} operations, {counts['cases']} cases, "
              f"{len(failures)} failures (5xx); answers by class: {dict(sorted(statuses.items()))}")
    assert counts["operations"] >= 60
    assert not failures, "\n".join(failures[:40])
