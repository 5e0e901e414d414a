"""Test clients for tests that keep one app context open across requests."""
from __future__ import annotations


class SharedContextClient:
    """A Flask test client whose requests share the test's app context. Flask-Login caches the
    user on ``g``, which that context keeps, so it is dropped around each request (else one
    request's user would act in the next). With ``user``, signs in first (password of the
    ``make_user`` fixture)."""

    def __init__(self, ctx, user=None, password: str = "correct-horse-1"):
        self.client = ctx.test_client()
        if user is not None:
            resp = self.post("/login", data={"username": user.username, "password": password})
            assert resp.status_code == 302, resp.data[:300]

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
