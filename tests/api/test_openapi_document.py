"""The generated OpenAPI document: valid OpenAPI 3.1, built from the features' schemas, and the base
``crm.api`` knows no feature. (Every API test's answers are validated against it by the test client,
``tests/clients.py``.)"""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.clients import UndocumentedResponse, check_response

FEATURES = ("appeals", "calls", "citizens", "consent", "qa", "reports", "dpo")


@pytest.fixture()
def doc(client):
    return client.get("/api/v1/openapi.json").get_json()


def test_the_document_is_valid_openapi_3_1(doc):
    from openapi_spec_validator import OpenAPIV31SpecValidator, validate

    assert doc["openapi"] == "3.1.0"
    validate(doc, cls=OpenAPIV31SpecValidator)


def test_qa_check_codes_are_the_ones_the_checks_produce(doc):
    from crm.qa import checks

    assert doc["components"]["schemas"]["QaCheck"]["properties"]["code"]["enum"] == list(checks.CODES)
    assert len(checks.CODES) == 9


def test_every_operation_is_tagged_by_its_feature_and_documents_its_errors(doc):
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["tags"], (path, method)
            if op.get("x-roles"):
                assert {"401", "403"} <= set(op["responses"]), (path, method)


def test_an_answer_that_drifts_from_the_document_is_caught(ctx):
    """The checking client fails a test whose answer the document does not describe."""
    class Fake:
        mimetype = "application/json"

        def __init__(self, status, body):
            self.status_code, self.body = status, body

        def get_json(self):
            return self.body

    ok = {"items": [{"id": "c1", "full_name": "Ф И О", "phone": None, "masked": True, "erased": False}]}
    check_response(ctx, "POST", "/api/v1/citizens/search", Fake(200, ok))
    with pytest.raises(UndocumentedResponse, match="required property"):
        check_response(ctx, "POST", "/api/v1/citizens/search", Fake(200, {"items": [{"id": "c1"}]}))
    # a status the operation does not list is held to the default answer, the error object
    check_response(ctx, "POST", "/api/v1/citizens/search", Fake(418, {"error": {"code": "x", "message": "y"}}))
    with pytest.raises(UndocumentedResponse, match="required property"):
        check_response(ctx, "POST", "/api/v1/citizens/search", Fake(418, {}))
    with pytest.raises(UndocumentedResponse, match="enum|is not one of"):
        check_response(ctx, "GET", "/api/v1/calls/abc", Fake(200, {
            "id": "abc", "status": "done", "error": None,
            "qa_checks": [{"code": "no_such_check", "passed": True, "detail": ""}]}))


def test_the_api_base_imports_no_feature():
    code = "import sys, crm.api; print(' '.join(m for m in sys.modules if m.startswith('crm.')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "crm.api" in loaded
    assert not [m for m in loaded if m.split(".")[1] in FEATURES], loaded
