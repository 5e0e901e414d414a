"""Only same-site paths are followed after a form (crm/security/redirects.py)."""
import pytest

from crm.security.redirects import local_target
from tests.mfa import sign_in


@pytest.mark.parametrize("target", [
    "/appeals/42", "/calls/abc?t=12.5", "/", "/dpo/alerts#a1",
])
def test_site_paths_are_kept(target):
    assert local_target(target, "/home") == target


@pytest.mark.parametrize("target", [
    None, "", "appeals/42", "https://evil.example/", "//evil.example/x", "/\\evil.example",
    "\\\\evil.example", "/\tevil", "javascript:alert(1)", "/ok\r\nSet-Cookie: a=b", "http:/evil.example",
])
def test_anything_else_falls_back(target):
    assert local_target(target, "/home") == "/home"


@pytest.mark.parametrize("nxt, expected", [("/\\evil.example", "/"), ("/appeals", "/appeals")])
def test_sign_in_follows_next_only_on_this_site(client, make_user, nxt, expected):
    user = make_user("operator")
    assert sign_in(client, user, query_string={"next": nxt}) == expected
