"""A refused recording is worded the same way on every edge: the truncated-recording refusal writes
its seconds with the Russian decimal comma («по заголовку 7,4 с звука, в файле только 1,2 с»), as the
rest of the UI writes durations (crm.i18n.format_number), on the web form, in ``POST /api/v1/calls``
and in ``crm transcribe``; English pages write «7.4 s»."""
from __future__ import annotations

import io
import json
import uuid

from tests.factories import CitizenFactory
from tests.speech import BAD

TRUNCATED = BAD / "t11_truncated.wav"  # the header says 7.4 s of sound, the file holds about 1.2 s
RU = "Запись обрезана: по заголовку 7,4 с звука, в файле только 1,2 с"


def test_api_refusal_writes_seconds_with_a_decimal_comma(ctx, client, make_user, api_token):
    headers = api_token(make_user("operator"))
    for lang, expected in (("", RU), ("?lang=en", "the header announces 7.4 s of sound, the file holds only 1.2 s")):
        resp = client.post(f"/api/v1/calls{lang}", data={"file": (io.BytesIO(TRUNCATED.read_bytes()), "call.wav")},
                           headers=headers, content_type="multipart/form-data")
        assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "recording_truncated"
        assert expected in resp.get_json()["error"]["message"], resp.get_json()


def test_cli_refusal_writes_seconds_with_a_decimal_comma(app, tmp_path):
    from crm.cli import main

    runner = app.test_cli_runner()
    out = runner.invoke(main, ["transcribe", str(TRUNCATED), "--model-dir", str(tmp_path)])
    assert out.exit_code == 2 and out.stderr.startswith(f"Ошибка (recording_truncated): {RU} "), out.stderr
    out = runner.invoke(main, ["transcribe", str(TRUNCATED), "--json", "--model-dir", str(tmp_path)])
    assert json.loads(out.stderr)["error"]["message_ru"].startswith(RU)


def test_web_form_refusal_writes_seconds_with_a_decimal_comma(ctx, make_user, login):
    citizen = CitizenFactory()
    data = {"submission_key": uuid.uuid4().hex, "category": "routine", "topic": "heating", "channel": "phone",
            "description": "Холодные батареи в квартире", "consent_sms": "yes", "consent_recording": "no",
            "recording": (io.BytesIO(TRUNCATED.read_bytes()), "Звонок.wav")}
    resp = login(make_user("operator")).post(f"/citizens/{citizen.id}/appeals/new", data=data,
                                             content_type="multipart/form-data")
    html = resp.get_data(as_text=True)
    assert RU in html and "7.4" not in html, resp.status_code


def test_an_empty_file_is_refused_in_the_same_words_on_the_web_in_the_api_and_by_the_cli(ctx, client, make_user,
                                                                                          api_token, login, tmp_path):
    from crm.calls.transcription import EMPTY_RU
    from crm.cli import main

    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert EMPTY_RU == "Файл записи пуст (0 байт): нужен файл с записью звонка."
    cli = ctx.test_cli_runner().invoke(main, ["transcribe", str(empty), "--model-dir", str(tmp_path)])
    assert cli.stderr == f"Ошибка (empty_recording): {EMPTY_RU}\n"
    resp = client.post("/api/v1/calls", data={"file": (io.BytesIO(b""), "call.wav")},
                       headers=api_token(make_user("operator")), content_type="multipart/form-data")
    assert resp.get_json()["error"] == {"code": "empty_recording", "message": EMPTY_RU}
    data = {"submission_key": uuid.uuid4().hex, "category": "routine", "topic": "heating", "channel": "phone",
            "description": "Холодные батареи в квартире", "consent_sms": "yes", "consent_recording": "no",
            "recording": (io.BytesIO(b""), "Звонок.wav")}
    html = login(make_user("operator")).post(f"/citizens/{CitizenFactory().id}/appeals/new", data=data,
                                             content_type="multipart/form-data").get_data(as_text=True)
    assert EMPTY_RU in html
