"""A refused form keeps what was typed (issue 17 point 6, crm/resubmit.py): an expired CSRF token, a
session that ended while the form was open, and an upload over ``MAX_CONTENT_LENGTH`` each answer a
page with a Russian reason and the typed fields in a form to the same address — before, a bare 400, a
redirect to the sign-in page and a bare 413 threw the typing away."""
from __future__ import annotations

import io
import re
import uuid

from flask import g

from tests.factories import CitizenFactory

TYPED = "Течёт крыша над кв. 12, вода по стене в подъезде №3"


def _appeal(**over) -> dict:
    data = {"submission_key": uuid.uuid4().hex, "category": "emergency", "topic": "roof_leak", "channel": "phone",
            "description": TYPED, "consent_sms": "yes", "consent_recording": "unknown"}
    data.update(over)
    return data


def _resubmit_form(html: str) -> dict:
    """The fields of the page's ``#resubmit-form`` (inputs and textareas, the fresh CSRF token)."""
    form = html.split('id="resubmit-form"', 1)[1].split("</form>", 1)[0]
    fields = dict(re.findall(r'<input (?:type="hidden" )?name="([^"]+)" value="([^"]*)"', form))
    fields.update(re.findall(r'<textarea name="([^"]+)" rows="4">([^<]*)</textarea>', form))
    return fields


def test_expired_csrf_token_shows_the_typed_form_again_and_it_can_be_sent(ctx, client, make_user, login,
                                                                           monkeypatch):
    from crm.appeals import services as appeals

    login(make_user("operator"))
    citizen = CitizenFactory()
    monkeypatch.setitem(ctx.config, "WTF_CSRF_ENABLED", True)
    url = f"/citizens/{citizen.id}/appeals/new"
    resp = client.post(url, data={**_appeal(), "csrf_token": "expired-token"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "Срок действия формы истёк" in html and TYPED in html and 'id="resubmit-form"' in html
    again = _resubmit_form(html)
    assert again["description"] == TYPED and again["csrf_token"] not in ("", "expired-token")
    assert f'action="{url}"' in html
    resp = client.post(url, data=again)  # sent again from the page: accepted
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    assert any(a.description == TYPED for a in appeals.for_citizen(citizen.id))


def test_session_ended_mid_form_keeps_the_typed_data(ctx, client, make_user, login):
    login(make_user("operator"))
    citizen = CitizenFactory()
    with client.session_transaction() as session:
        session.clear()  # the session ended (idle timeout, sign-out in another tab)
    g.pop("_login_user", None)  # the test's app context cached the signed-in user
    resp = client.post(f"/citizens/{citizen.id}/appeals/new", data=_appeal())
    html = resp.get_data(as_text=True)
    assert resp.status_code == 401
    assert "Сеанс работы истёк" in html and TYPED in html and 'id="resubmit-sign-in"' in html
    # a GET (nothing typed) still goes to the sign-in page
    assert client.get(f"/citizens/{citizen.id}/appeals/new").status_code == 302


def test_upload_over_the_limit_keeps_the_appeal_and_names_the_limit(ctx, client, make_user, login, monkeypatch):
    login(make_user("operator"))
    citizen = CitizenFactory()
    monkeypatch.setitem(ctx.config, "MAX_CONTENT_LENGTH", 1024 * 1024)
    page = client.get(f"/citizens/{citizen.id}/appeals/new").get_data(as_text=True)
    # the client-side check's figures (static/forms.js): the limit in bytes and the message in MB
    assert 'data-upload-max-bytes="1048576"' in page and "Файл больше 1 МБ" in page
    assert page.index('name="consent_at"') < page.index('name="recording"')  # the file goes last
    data = {**_appeal(), "recording": (io.BytesIO(b"\0" * (2 * 1024 * 1024)), "звонок.wav")}
    resp = client.post(f"/citizens/{citizen.id}/appeals/new", data=data, content_type="multipart/form-data")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 413
    assert "Файл больше допустимых 1 МБ" in html and TYPED in html
    again = _resubmit_form(html)
    assert again["topic"] == "roof_leak" and again["category"] == "emergency"
    assert 'type="file" name="recording"' in html and 'enctype="multipart/form-data"' in html


def test_api_answers_stay_json(ctx, client, make_user, api_token, monkeypatch):
    """The API is CSRF-exempt and answers a 413 as its JSON error, not the page."""
    monkeypatch.setitem(ctx.config, "MAX_CONTENT_LENGTH", 1024)
    resp = client.post("/api/v1/calls", data={"file": (io.BytesIO(b"\0" * 4096), "a.wav")},
                       headers=api_token(make_user("operator")), content_type="multipart/form-data")
    assert resp.status_code == 413 and resp.get_json()["error"]["code"]
