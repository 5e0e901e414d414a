"""A call uploaded without an appeal or citizen (``POST /api/v1/calls`` with only a file), as a supervisor
sees it (a new user's report): the page said «заявитель не давал согласия…» though no citizen is linked,
and offered «Расшифровать заново», which the re-run refuses (it is quality control: the QA-consent gate,
and there is nobody's consent to check). The page now says the call is not linked to a citizen, so there
is no consent to check and the transcript is not shown for quality control, and offers neither the re-run
nor the review mode; the re-run itself still refuses (403 ``no_consent``), saying why.

On PostgreSQL + Redis; the transcript is saved with ``calls.services.save_transcript`` (no model)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from crm import jobs
from tests.api.test_api import as_role  # noqa: F401  (a fixture)
from tests.calls.test_api_calls import upload  # noqa: F401  (a fixture)
from tests.clients import SharedContextClient
from tests.factories import CallFactory, CitizenFactory
from tests.wavs import tone_wav

TURNS = [{"start": 0.0, "end": 2.0, "speaker": "operator", "channel": 0, "text": "Горячая линия, слушаю."},
         {"start": 2.5, "end": 5.0, "speaker": "citizen", "channel": 1, "text": "Нет горячей воды."}]


@pytest.fixture()
def lone_call(ctx, as_role, upload):  # noqa: F811
    from crm.calls import services as calls

    sup, headers = as_role("supervisor")
    resp = upload(headers, tone_wav())
    assert resp.status_code == 202, resp.get_json()
    body = resp.get_json()
    assert body["appeal_id"] is None and body["citizen_id"] is None
    call = calls.get(body["id"])
    # the upload's job stays queued (the upload fixture removes it); the transcript is saved here instead
    calls.save_transcript(call, SimpleNamespace(status="done", language="ru", rtf=0.1, duration_s=5.0,
                                                segments=[dict(s) for s in TURNS]))
    return SimpleNamespace(call=call, sup=sup, headers=headers)


def test_the_page_says_the_call_is_not_linked_and_offers_no_refused_action(ctx, lone_call):
    page = SharedContextClient(ctx, lone_call.sup)
    html = page.get(f"/calls/{lone_call.call.id}").get_data(as_text=True)
    assert "не давал согласия" not in html, html
    assert 'data-reason="no_citizen"' in html and "Звонок не привязан к заявителю" in html
    assert "не показываются для контроля качества" in html and "горячей воды" not in html
    assert 'id="qa-no-citizen"' in html
    assert "Расшифровать заново" not in html and f"/calls/{lone_call.call.id}/retranscribe" not in html
    assert "режим проверки" not in html  # the review page refuses such a call (403)
    assert page.get(f"/qa/review/{lone_call.call.id}").status_code == 403


def test_the_retranscription_is_refused_and_says_why(ctx, lone_call):
    queued = jobs.queue("transcription").count
    resp = ctx.test_client().post(f"/api/v1/calls/{lone_call.call.id}/transcription", headers=lone_call.headers)
    assert resp.status_code == 403, resp.get_data()
    err = resp.get_json()["error"]
    assert err["code"] == "no_consent" and "не привязан к заявителю" in err["message"]
    assert "не давал согласия" not in err["message"]
    page = SharedContextClient(ctx, lone_call.sup)
    assert page.post(f"/calls/{lone_call.call.id}/retranscribe").status_code == 302
    html = page.get(f"/calls/{lone_call.call.id}").get_data(as_text=True)
    assert "не привязан к заявителю: согласие на запись для контроля качества проверить не у кого, поэтому " \
           "расшифровывать" in html
    assert jobs.queue("transcription").count == queued  # nothing queued again


def test_a_consenting_citizen_call_still_offers_the_rerun(ctx, make_user):
    sup = make_user("supervisor")
    call = CallFactory(operator=make_user("operator"), citizen=CitizenFactory(qa_consent=True), segments=TURNS)
    html = SharedContextClient(ctx, sup).get(f"/calls/{call.id}").get_data(as_text=True)
    assert "Расшифровать заново" in html and "режим проверки" in html and "горячей воды" in html
    refused = CallFactory(operator=make_user("operator"), citizen=CitizenFactory(qa_consent=False), segments=TURNS)
    html = SharedContextClient(ctx, sup).get(f"/calls/{refused.id}").get_data(as_text=True)
    # a citizen who did not consent: the consent wording stays, and the refused re-run is not offered
    assert "заявитель не давал согласия" in html and 'data-reason="no_citizen"' not in html
    assert "Расшифровать заново" not in html
