"""Languages (crm.i18n): Russian by default, English on request, every marked message translated,
dates in CRM_TIMEZONE through Flask-Babel's formatter."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from crm import create_app, i18n

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "crm" / "translations"


def _source_messages() -> set[str]:
    """The message ids marked in the code and templates, extracted as `make translations` does."""
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    ids = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(ROOT / "crm"), method_map):
        ids.update([message] if isinstance(message, str) else [m for m in message if m])
    return ids


def _catalogue(locale: str):
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f, locale=locale)


def test_every_marked_message_is_in_the_catalogues_and_translated_to_english():
    source = _source_messages()
    assert source, "no message is marked for translation"
    en, ru = _catalogue("en"), _catalogue("ru")
    missing = sorted(m for m in source if m not in en or m not in ru)
    assert not missing, f"run `make translations`; not in the catalogues: {missing[:20]}"
    untranslated = sorted(m for m in source if not en[m].string)
    assert not untranslated, f"no English translation in crm/translations/en: {untranslated[:20]}"


def test_russian_by_default_english_on_request(client):
    page = client.get("/no-such-page")
    assert page.status_code == 404
    assert "Не найдено" in page.get_data(as_text=True) and "На главную" in page.get_data(as_text=True)
    page = client.get("/no-such-page?lang=en")
    text = page.get_data(as_text=True)
    assert "Not found" in text and "Home" in text and "Не найдено" not in text
    # the choice is remembered for the session, and ?lang=ru switches back
    assert "Not found" in client.get("/still-missing").get_data(as_text=True)
    assert "Не найдено" in client.get("/still-missing?lang=ru").get_data(as_text=True)


def test_browser_language_is_not_followed(client):
    page = client.get("/no-such-page", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert "Не найдено" in page.get_data(as_text=True)


def test_dates_are_formatted_in_the_configured_time_zone(app_config):
    moment = datetime(2026, 12, 31, 20, 30, tzinfo=timezone.utc)
    for zone, shown in (("Europe/Moscow", "31.12.2026 23:30"), ("Asia/Yekaterinburg", "01.01.2027 01:30")):
        app = create_app({**app_config, "CRM_TIMEZONE": zone})
        with app.test_request_context("/"):
            assert i18n.format_local(moment) == shown
            assert i18n.format_local(moment.isoformat(), seconds=True) == shown + ":00"
            assert i18n.format_local(None) == "—"
