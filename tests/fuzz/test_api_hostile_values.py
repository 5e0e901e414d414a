"""The values that broke pages before, aimed at every ``/api/v1`` operation of the OpenAPI document (a
complement to the random search of test_api_schemathesis.py, which rarely draws them):

- a NUL byte in each string (PostgreSQL refuses ``\\x00`` in text: "A string literal cannot contain NUL");
- 2**63 and -2**63 in each integer (beyond SQL ``INTEGER`` and ``BIGINT``);
- year 0, year 99999 and the last representable instant in each date / date-time;
- a JSON body nested 100,000 levels deep (Python's parser raises ``RecursionError``, not ``ValueError``);
- the same NUL / huge / absurd values in query parameters and path parameters.

A body is made valid first from the operation's schema (required fields filled with plausible values,
seeded ids where the name says so), then one field at a time is replaced. Each request is made with a
token of a role the policy allows; the answer must not be a 5xx.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections import Counter

from crm.security import policy
from tests.security.test_audit_completeness import fresh_user, world  # noqa: F401  (the fixture)

NUL = "abc\x00def"
HUGE = (2**63, -(2**63), 10**40)
DATES = ("0000-01-01", "99999-12-31", "0001-01-01", "2026-02-30")
DATETIMES = ("0000-01-01T00:00:00+00:00", "99999-12-31T23:59:59+03:00", "0001-01-01T00:00:00+00:00",
             "9999-12-31T23:59:59-23:59", "2026-13-45T25:61:61Z")
DEEP = 100_000
ROLE_PREFERENCE = ("admin", "supervisor", "operator", "executor", "dpo", "ivr")
SECRET = "hostile-telephony-secret"


def _resolve(doc, schema):
    while isinstance(schema, dict) and "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if isinstance(schema, dict) and "allOf" in schema:
        merged = {"type": "object", "properties": {}, "required": []}
        for part in schema["allOf"]:
            part = _resolve(doc, part)
            merged["properties"].update(part.get("properties", {}))
            merged["required"] += part.get("required", [])
        return merged
    return schema


def _type(schema) -> str:
    t = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    return t


def _example(doc, schema, name: str, seeded: dict, depth: int = 0):
    """A plausible value for ``schema`` (the field called ``name``)."""
    schema = _resolve(doc, schema)
    if "enum" in schema:
        return next(v for v in schema["enum"] if v is not None)
    t = _type(schema)
    if t == "object":
        if depth > 4:
            return {}
        props = schema.get("properties", {})
        return {k: _example(doc, v, k, seeded, depth + 1) for k, v in props.items()
                if k in schema.get("required", ()) or k in seeded}
    if t == "array":
        return [_example(doc, schema.get("items", {}), name, seeded, depth + 1)]
    if t == "integer":
        return int(seeded[name]) if str(seeded.get(name, "")).isdigit() else 1
    if t == "number":
        return 1.5
    if t == "boolean":
        return True
    if name in seeded:
        return str(seeded[name])
    fmt = schema.get("format")
    if fmt == "date":
        return "2026-03-02"
    if fmt == "date-time":
        return "2026-03-02T10:00:00+03:00"
    if "phone" in name:
        return "+7 912 555-44-33"
    return "Тест"


def _mutations(doc, schema, value, path=()):
    """``(path, hostile)`` for each leaf of ``value`` the schema types: NUL strings, huge integers,
    absurd dates."""
    schema = _resolve(doc, schema)
    t = _type(schema)
    if t == "object" and isinstance(value, dict):
        for k, v in value.items():
            yield from _mutations(doc, schema.get("properties", {}).get(k, {}), v, (*path, k))
    elif t == "array" and isinstance(value, list) and value:
        yield from _mutations(doc, schema.get("items", {}), value[0], (*path, 0))
    elif t == "integer":
        for h in HUGE:
            yield path, h
    elif t == "string" and "enum" not in schema:
        yield path, NUL
        fmt = schema.get("format")
        for d in DATES if fmt == "date" else DATETIMES if fmt == "date-time" else ():
            yield path, d


def _replaced(value, path, new):
    if not path:
        return new
    out = json.loads(json.dumps(value))
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return out


def test_hostile_values_on_every_operation_answer_no_5xx(ctx, world, monkeypatch, capsys):  # noqa: F811
    monkeypatch.setitem(ctx.config, "CRM_TELEPHONY_SECRET", SECRET)
    monkeypatch.setitem(ctx.config, "CRM_SMS_CALLBACK_TOKEN", "hostile-token")
    doc = ctx.test_client().get("/api/v1/openapi.json").get_json()
    endpoints = {}
    for rule in ctx.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule[len("/api/v1"):])
            for m in rule.methods - {"HEAD", "OPTIONS"}:
                endpoints[(m.lower(), path)] = rule.endpoint
    seeded = {k: str(v) for k, v in world.args.items()}
    failures, counts = [], Counter()

    def send(method, path, endpoint, *, params=None, query=None, body=None, raw=None):
        rule = policy.rule_for(endpoint)
        role = next((r for r in ROLE_PREFERENCE if r in rule.roles), None) if rule.kind == "staff" else None
        headers = dict(world.headers[role]) if role else {}
        url = "/api/v1" + path.format(**params)
        data = raw if raw is not None else (json.dumps(body, ensure_ascii=False).encode() if body is not None else None)
        if data is not None:
            headers["Content-Type"] = "application/json"
            if endpoint == "api_telephony.telephony_event":
                headers["X-CRM-Signature"] = "sha256=" + hmac.new(SECRET.encode(), data, hashlib.sha256).hexdigest()
        fresh_user()
        resp = ctx.test_client().open(url, method=method.upper(), query_string=query, data=data, headers=headers)
        fresh_user()
        counts["cases"] += 1
        counts[resp.status_code // 100 * 100] += 1
        if resp.status_code >= 500:
            failures.append(f"{method.upper()} {url} ({endpoint}) query={query!r} body={(data or b'')[:200]!r} → "
                            f"{resp.status_code} {resp.get_data()[:200]!r}")

    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            endpoint = endpoints[(method, path)]
            counts["operations"] += 1
            names = [p["name"] for p in op.get("parameters", ()) if p["in"] == "path"]
            params = {n: seeded.get(n, "1") for n in names}
            queries = [p for p in op.get("parameters", ()) if p["in"] == "query"]
            base_query = {p["name"]: _example(doc, p.get("schema", {}), p["name"], seeded) for p in queries
                          if p.get("required")}
            # path parameters: NUL and huge
            for n in names:
                for bad in (NUL, str(2**63)):
                    send(method, path, endpoint, params={**params, n: bad.replace("\x00", "%00")},
                         query=base_query)
            # query parameters one at a time
            for p in queries:
                sch = _resolve(doc, p.get("schema", {}))
                bads = [NUL, *(str(h) for h in HUGE)]
                bads += list(DATES) + list(DATETIMES) if sch.get("format") in ("date", "date-time") else []
                for bad in bads:
                    send(method, path, endpoint, params=params, query={**base_query, p["name"]: bad})
            body_schema = (op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema"))
            if body_schema is None:
                continue
            body = _example(doc, body_schema, "body", seeded)
            send(method, path, endpoint, params=params, query=base_query, body=body)
            for leaf, bad in _mutations(doc, body_schema, body):
                send(method, path, endpoint, params=params, query=base_query, body=_replaced(body, leaf, bad))
            send(method, path, endpoint, params=params, query=base_query,
                 raw=("[" * DEEP + "]" * DEEP).encode())
            send(method, path, endpoint, params=params, query=base_query,
                 raw=('{"a":' * DEEP + "1" + "}" * DEEP).encode())

    with capsys.disabled():
        print(f"\nhostile values: {counts['operations']} operations, {counts['cases']} cases, {len(failures)} "
              f"failures (5xx); answers by class: { {k: v for k, v in sorted(counts.items(), key=str) if isinstance(k, int)} }")
    assert counts["operations"] >= 60 and counts["cases"] > 400, counts
    assert not failures, f"{len(failures)} answers were 5xx:\n" + "\n".join(failures[:60])
