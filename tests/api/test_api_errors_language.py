"""Errors raised by the services are shown in the request's language (issue 12): Russian by default,
byte for byte as before, English on ``?lang=en`` (crm.i18n: the app follows ``?lang=``, never the
browser's ``Accept-Language``), in the API's ``{"error": {"message"}}`` and on the HTML pages alike."""
from __future__ import annotations

import io

from tests.api.test_api import appeal_body, as_role, assert_error  # noqa: F401  (as_role is a fixture)


def test_service_error_in_english_on_request_and_russian_by_default(client, as_role):
    _, headers = as_role("operator")
    body = appeal_body(category="urgent")
    err = assert_error(client.post("/api/v1/appeals", json=body, headers=headers), 400, "invalid_category")
    assert err["message"] == "неизвестная категория «urgent»"
    err = assert_error(client.post("/api/v1/appeals?lang=en", json=body, headers=headers), 400, "invalid_category")
    assert err["message"] == "unknown category «urgent»"
    err = assert_error(client.post("/api/v1/appeals?lang=ru", json=body, headers=headers), 400, "invalid_category")
    assert err["message"] == "неизвестная категория «urgent»"
    # a header asking for English changes nothing: the language is chosen with ?lang=
    err = assert_error(client.post("/api/v1/appeals", json=body, headers={**headers, "Accept-Language": "en"}), 400)
    assert err["message"] == "неизвестная категория «urgent»"


def test_crm_errors_and_nested_messages_in_english(client, as_role):
    _, headers = as_role("operator")
    body = {k: v for k, v in appeal_body().items() if k != "citizen"} | {"citizen_id": "nope"}
    err = assert_error(client.post("/api/v1/appeals?lang=en", json=body, headers=headers), 404, "citizen_not_found")
    assert err["message"] == "citizen not found"
    err = assert_error(client.post("/api/v1/appeals", json=body, headers=headers), 404, "citizen_not_found")
    assert err["message"] == "заявитель не найден"
    # a refused recording: the decoder's reason inside the upload's message, both translated
    for lang, expected in (("en", "Recording not accepted: The file is not an audio recording or its format is not "
                                  "recognised."),
                           ("ru", "Запись не принята: Файл не является аудиозаписью или его формат не распознан.")):
        resp = client.post(f"/api/v1/calls?lang={lang}", headers=headers, content_type="multipart/form-data",
                           data={"file": (io.BytesIO(b"This is not audio, just a text file.\n" * 20), "notes.txt")})
        assert assert_error(resp, 400, "recording_not_audio")["message"] == expected


def test_service_error_on_an_html_page_in_english(client, make_user, login):
    login(make_user("operator"))
    page = client.get("/appeals?cursor=not-a-cursor&lang=en")
    assert page.status_code == 400
    assert "invalid cursor: start the list again" in page.get_data(as_text=True)
    page = client.get("/appeals?cursor=not-a-cursor&lang=ru")
    assert "неверный курсор: начните список сначала" in page.get_data(as_text=True)


def test_api_edge_messages_in_english(client, as_role):
    """What the API base answers itself (authentication, roles, body validation) follows ?lang= too."""
    err = assert_error(client.get("/api/v1/appeals?lang=en"), 401, "unauthorized")
    assert err["message"] == "a token is needed: the «Authorization: Bearer <token>» header"
    err = assert_error(client.get("/api/v1/appeals"), 401, "unauthorized")
    assert err["message"] == "нужен токен: заголовок «Authorization: Bearer <токен>»"
    _, sup = as_role("supervisor")
    err = assert_error(client.post("/api/v1/appeals?lang=en", json=appeal_body(), headers=sup), 403, "forbidden")
    assert err["message"] == "the role «supervisor» is not allowed to do this"
    _, headers = as_role("operator")
    body = appeal_body(category=["routine"])
    err = assert_error(client.post("/api/v1/appeals?lang=en", json=body, headers=headers), 400, "invalid_category")
    assert err["message"] == "the field «category» must be a string"
    err = assert_error(client.post("/api/v1/appeals", json=body, headers=headers), 400, "invalid_category")
    assert err["message"] == "поле «category» должно быть строкой"
    body = {k: v for k, v in appeal_body().items() if k != "description"}
    err = assert_error(client.post("/api/v1/appeals?lang=en", json=body, headers=headers), 400, "invalid_description")
    assert err["message"] == "give the field «description»"


def test_length_and_range_messages_are_translated(client, as_role):
    """marshmallow's «Length must be between…» reached the Russian API answer in English (new-user
    trial: an empty knowledge-base title)."""
    _, headers = as_role("supervisor")
    body = {"title": "", "body": "Текст статьи", "topic": None}
    err = assert_error(client.post("/api/v1/kb/articles", json=body, headers=headers), 400, "invalid_title")
    assert err["message"] == "поле «title» должно содержать от 1 до 200 символов"
    err = assert_error(client.post("/api/v1/kb/articles?lang=en", json=body, headers=headers), 400, "invalid_title")
    assert err["message"] == "the field «title» must be 1 to 200 characters long"
