"""Test clients: one for tests that keep one app context open across requests, the client class of
the test apps, which checks every ``/api/v1`` JSON answer against the OpenAPI document, and the
client class of a second app on the test's database."""
from __future__ import annotations

from flask.testing import FlaskClient


class SharedContextClient:
    """A Flask test client whose requests share the test's app context. Flask-Login caches the
    user on ``g``, which that context keeps, so it is dropped around each request (else one
    request's user would act in the next). With ``user``, signs in first through both steps
    (password of the ``make_user`` fixture, then the second factor: tests.mfa)."""

    def __init__(self, ctx, user=None, password: str = "correct-horse-1"):
        self.client = ctx.test_client()
        if user is not None:
            from tests.mfa import sign_in

            sign_in(self, user, password)  # both steps: password, then enrolment or a TOTP code

    def _call(self, method, *args, **kwargs):
        from flask import g

        g.pop("_login_user", None)
        try:
            return getattr(self.client, method)(*args, **kwargs)
        finally:
            g.pop("_login_user", None)

    def get(self, *args, **kwargs):
        return self._call("get", *args, **kwargs)

    def post(self, *args, **kwargs):
        return self._call("post", *args, **kwargs)

    def session_transaction(self):
        return self.client.session_transaction()


# --- every /api/v1 JSON answer checked against the OpenAPI document ---------------------------------

class UndocumentedResponse(AssertionError):
    """A JSON answer of ``/api/v1`` that the generated OpenAPI document does not describe."""


_DOCS: dict[int, tuple[dict, list]] = {}


def _document(app) -> tuple[dict, list]:
    """The app's OpenAPI document (generated once per app) and its paths as ``(regex, path)``,
    literal paths before templated ones (``/calls/search`` before ``/calls/{call_id}``)."""
    import re

    if id(app) not in _DOCS:
        doc = app.extensions["crm_api"].spec.to_dict()
        paths = sorted(doc["paths"], key=lambda p: (p.count("{"), p))
        patterns = [(re.compile("^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(p)) + "$"), p) for p in paths]
        _DOCS[id(app)] = (doc, patterns)
    return _DOCS[id(app)]


def response_schema(app, method: str, path: str, status: int) -> dict | None:
    """The JSON schema the document gives for ``method path`` answering ``status`` (``path``
    without ``/api/v1``); an unknown path or method is answered with the ``Error`` object. Raises
    :class:`UndocumentedResponse` for a status the operation does not document; None when the
    answer has no schema (the document itself)."""
    doc, patterns = _document(app)
    template = next((p for rx, p in patterns if rx.match(path)), None)
    op = doc["paths"].get(template, {}).get(method.lower()) if template else None
    if op is None:
        return {"$ref": "#/components/schemas/Error"}
    responses = op["responses"]
    answer = responses.get(str(status)) or responses.get("default")
    if answer is None:
        raise UndocumentedResponse(f"{method} {template}: status {status} is not documented "
                                   f"(documented: {sorted(responses)})")
    if "$ref" in answer:  # a shared response of components.responses
        answer = doc["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    return answer.get("content", {}).get("application/json", {}).get("schema")


def check_response(app, method: str, path: str, resp) -> None:
    """Validate a JSON answer of ``/api/v1`` against the document (jsonschema, draft 2020-12, with
    formats checked). Other answers are left alone."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

    if not path.startswith("/api/v1/") or resp.mimetype != "application/json":
        return
    schema = response_schema(app, method, path[len("/api/v1"):], resp.status_code)
    if schema is None:
        return
    doc, _ = _document(app)
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema", "allOf": [schema],
            "components": doc["components"]}
    validator = Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)
    try:
        validator.validate(resp.get_json())
    except ValidationError as exc:
        raise UndocumentedResponse(f"{method} {path} → {resp.status_code}: the answer does not match the "
                                   f"OpenAPI document: {exc.message} at {list(exc.absolute_path)}") from None


class OpenApiCheckingClient(FlaskClient):
    """The test client of the ``app`` fixture: every JSON answer of ``/api/v1`` is validated against
    the generated OpenAPI document for its path, method and status, so the document cannot drift
    from what the API really sends."""

    def open(self, *args, **kwargs):
        resp = super().open(*args, **kwargs)
        req = resp.request
        check_response(self.application, req.method, req.path, resp)
        return resp


class SecondAppClient(OpenApiCheckingClient):
    """The client of a second app built on the test's database (another ``create_app`` of the same
    ``app_config``). Its requests run in an app context, session and connection of their own, not in
    the test's: before each request the test's session (the app context the test holds, if any)
    commits, so the second app sees the test's rows and is not kept waiting. On SQLite every
    transaction begins IMMEDIATE (crm.db), so a transaction the test's session opened — by a query,
    or by reading an attribute of an object expired at the last commit, such as ``user.username`` —
    holds the database's write lock until the 30 s busy timeout fails the second app's request with
    «database is locked». (A request of the test's own app shares the test's context and session,
    which is why its client needs none of this.)"""

    def open(self, *args, **kwargs):
        from flask import has_app_context

        if has_app_context():
            from crm.db import db

            db.session.commit()
        return super().open(*args, **kwargs)
