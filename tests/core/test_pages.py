"""HTML pages through the Flask test client: roles, the operator's flow, masking and reveal, idempotent
appeal submission, refused uploads, no plaintext personal data at rest, and logout revocation.

Runs on SQLite + embedded Redis by default and on PostgreSQL + Redis with ``DATABASE_URL`` /
``REDIS_URL`` set. CSRF is disabled in the ``app`` fixture; the few views that check the token
themselves get it from the rendered page.
"""
from __future__ import annotations

import io
import random
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
import sqlalchemy as sa

from tests.files import read_from_another_process
from tests.wavs import tone_wav

PLANTED_NAME = "Зюзиков Планетарий Евграфович"
PLANTED_PHONE = "+7 912 000-11-22"
PLANTED_DIGITS = "9120001122"


# --- helpers --------------------------------------------------------------------------------------



def random_bytes(n: int = 4096) -> bytes:
    """``n`` reproducible random bytes that start with no known audio magic."""
    data = bytearray(random.Random(13).randbytes(n))
    data[:4] = b"\x00\x13\x37\x42"
    return bytes(data)


def path_of(resp) -> str:
    return urlparse(resp.headers["Location"]).path


def csrf_from(html: str) -> str:
    m = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert m, "no csrf_token field on the page"
    return m.group(1)


def count(model, *where) -> int:
    from crm.db import db

    return db.session.execute(sa.select(sa.func.count()).select_from(model).where(*where)).scalar_one()


def stored_files(app) -> set[Path]:
    """Every file under the recordings folder (empty sub-folders such as ``incoming/`` do not count)."""
    root = Path(app.config["CRM_RECORDINGS_DIR"])
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def register_citizen(client, full_name: str = "Петров Иван Сергеевич", phone: str = "8 912 345-67-89",
                     **extra) -> str:
    """POST /citizens; returns the new citizen's id (from the redirect to its new-appeal form)."""
    resp = client.post("/citizens", data={"full_name": full_name, "phone": phone, "email": extra.get("email", ""),
                                          "address": extra.get("address", "ул. Садовая, д. 5"),
                                          "apartment": extra.get("apartment", "17")})
    assert resp.status_code == 302, resp.get_data(as_text=True)[:1000]
    m = re.fullmatch(r"/citizens/([^/]+)/appeals/new", path_of(resp))
    assert m, resp.headers["Location"]
    return m.group(1)


def appeal_form(submission_key: str | None = None, recording: tuple[bytes, str] | None = None, **over) -> dict:
    data = {"submission_key": submission_key or uuid.uuid4().hex, "category": "emergency", "topic": "hot_water",
            "channel": "phone", "description": "Нет горячей воды во всём подъезде с утра.",
            "consent_sms": "yes", "consent_recording": "yes"}
    data.update(over)
    if recording is not None:
        data["recording"] = (io.BytesIO(recording[0]), recording[1])
    return data


def post_appeal(client, citizen_id: str, data: dict):
    return client.post(f"/citizens/{citizen_id}/appeals/new", data=data, content_type="multipart/form-data")


@pytest.fixture()
def clean_side_effects(app):
    """Remove the recordings and queued jobs a test leaves behind (rows are wiped by ``ctx``)."""
    before = stored_files(app)
    yield
    for p in stored_files(app) - before:
        p.unlink(missing_ok=True)
    from crm import jobs

    with app.app_context():
        for q in jobs.QUEUES:
            jobs.queue(q).empty()


@pytest.fixture()
def operator(make_user):
    return make_user("operator")


@pytest.fixture()
def op_client(login, operator, clean_side_effects):
    return login(operator)


# --- roles ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["/qa/calls", "/qa/evaluations", "/dpo/access-log"])
def test_operator_refused_supervisor_and_dpo_pages(op_client, url):
    resp = op_client.get(url)
    assert resp.status_code == 403
    assert "Доступ запрещён" in resp.get_data(as_text=True)


@pytest.mark.parametrize("url", ["/operator", "/qa/calls", "/qa/evaluations", "/dpo/access-log", "/appeals"])
def test_anonymous_redirected_to_login(client, url):
    resp = client.get(url)
    assert resp.status_code == 302
    assert path_of(resp) == "/login"


def test_supervisor_refused_operator_page(make_user, login):
    c = login(make_user("supervisor"))
    assert c.get("/operator").status_code == 403
    assert c.post("/citizens", data={"full_name": "Иванов Иван", "phone": "89123456789"}).status_code == 403


def test_dpo_sees_access_log(make_user, login):
    c = login(make_user("dpo"))
    resp = c.get("/dpo/access-log")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "Журнал доступа к персональным данным" in html
    assert "auth.login" in html  # the DPO's own sign-in is in the log
    # by its Russian label, the code kept beside it; the DPO by name, the role in Russian
    assert '<span title="auth.login">вход в систему</span>' in html and "<code>auth.login</code>" in html
    assert '<span title="dpo">ответственный за ПДн</span>' in html and '<span title="ok">выполнено</span>' in html
    assert '<option value="auth.login">вход в систему (auth.login)</option>' in html


# --- the operator's flow --------------------------------------------------------------------------

def test_register_citizen_and_log_appeal_with_recording(op_client, app):
    from crm.appeals.models import Appeal
    from crm.calls.models import Call
    from crm.consent.models import ConsentEvent

    cid = register_citizen(op_client)
    form = op_client.get(f"/citizens/{cid}/appeals/new")
    assert form.status_code == 200
    html = form.get_data(as_text=True)
    assert "Новое обращение" in html and "+7 912 ***-**-89" in html
    key = re.search(r'name="submission_key"[^>]*value="([0-9a-f]+)"', html).group(1)

    resp = post_appeal(op_client, cid, appeal_form(key, recording=(tone_wav(), "Запись звонка №5.wav")))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:1000]
    m = re.fullmatch(r"/appeals/([^/]+)", path_of(resp))
    assert m, resp.headers["Location"]
    appeal_id = m.group(1)

    from crm.db import db

    appeal = db.session.get(Appeal, appeal_id)
    assert appeal.citizen_id == cid and appeal.status == "received" and appeal.topic == "hot_water"
    calls = db.session.execute(sa.select(Call).where(Call.appeal_id == appeal_id)).scalars().all()
    assert len(calls) == 1 and calls[0].status == "queued" and calls[0].original_name == "Запись звонка №5.wav"
    assert Path(app.config["CRM_RECORDINGS_DIR"], f"{calls[0].storage_key}.rec").is_file()
    assert count(ConsentEvent, ConsentEvent.citizen_id == cid) == 2

    page = op_client.get(path_of(resp))
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert f"Обращение № {appeal.number} зарегистрировано." in text
    assert "Запись звонка принята и поставлена на расшифровку." in text
    assert "в очереди" in text


def test_appeal_page_masks_phone_until_reveal_and_logs_it(op_client):
    from crm.db import db
    from crm.security.models import AccessLogEntry

    cid = register_citizen(op_client, phone="+7 (912) 345 67 89", address="ул. Садовая, д. 5", apartment="17",
                           email="petrov.i@example.ru")
    resp = post_appeal(op_client, cid, appeal_form())
    appeal_path = path_of(resp)

    html = op_client.get(appeal_path).get_data(as_text=True)
    assert "+7 912 ***-**-89" in html
    assert "345-67-89" not in html and "79123456789" not in html and "Садовая" not in html and "petrov.i" not in html
    # the button says what it shows and logs: the citizen's data (phone, address and e-mail), not only
    # «телефон и адрес» (a newcomer's report)
    assert "Показать данные заявителя (доступ записывается в журнал)" in html and "Показать телефон и адрес" not in html
    reveals = sa.select(sa.func.count()).select_from(AccessLogEntry).where(
        AccessLogEntry.action == "citizen.reveal", AccessLogEntry.citizen_id == cid)
    assert db.session.execute(reveals).scalar_one() == 0

    revealed = op_client.post(appeal_path + "/reveal", data={"csrf_token": csrf_from(html)})
    assert revealed.status_code == 200
    shown = revealed.get_data(as_text=True)
    assert "+7 912 345-67-89" in shown and "ул. Садовая, д. 5" in shown and "кв. 17" in shown
    assert "Эл. почта: petrov.i@example.ru" in shown  # logged as shown: shown
    db.session.expire_all()
    rows = db.session.execute(sa.select(AccessLogEntry).where(
        AccessLogEntry.action == "citizen.reveal", AccessLogEntry.citizen_id == cid)).scalars().all()
    assert len(rows) == 1
    assert rows[0].purpose == "appeal_processing" and rows[0].appeal_id == appeal_path.rsplit("/", 1)[1]
    assert "phone" in str(rows[0].fields) and "345" not in str(rows[0].fields)
    assert "email" in str(rows[0].fields) and "petrov" not in str(rows[0].fields)


def test_consent_withdrawn_on_revealed_page_returns_to_the_appeal(op_client):
    from crm.consent.models import ConsentEvent
    from crm.db import db

    cid = register_citizen(op_client)
    appeal_path = path_of(post_appeal(op_client, cid, appeal_form()))
    html = op_client.get(appeal_path).get_data(as_text=True)
    visible = re.sub(r"<[^>]+>", " ", html)  # purpose codes may sit in form fields, never in the text
    assert "SMS-уведомления о статусе заявки — дано" in visible and "sms_notifications" not in visible
    revealed = op_client.post(appeal_path + "/reveal", data={"csrf_token": csrf_from(html)}).get_data(as_text=True)
    m = re.search(r'<form method="post" class="inline" action="(/consents/[^"]+/withdraw)"\s*'
                  r'data-confirm="Отозвать согласие[^"]*">\s*'
                  r'<input type="hidden" name="csrf_token" value="([^"]+)"><input type="hidden" name="next" '
                  r'value="([^"]+)">', revealed)
    assert m, revealed[:3000]  # the withdraw form asks for confirmation first (data-confirm, forms.js)
    resp = op_client.post(m.group(1), data={"csrf_token": m.group(2), "next": m.group(3)})
    assert resp.status_code == 302 and path_of(resp) == appeal_path
    page = op_client.get(path_of(resp))
    assert page.status_code == 200 and "Согласие отозвано." in page.get_data(as_text=True)
    db.session.expire_all()
    assert count(ConsentEvent, ConsentEvent.citizen_id == cid, ConsentEvent.withdrawn_at.is_not(None)) == 1


def test_consent_withdraw_does_not_redirect_off_site(op_client):
    from crm.consent.models import ConsentEvent
    from crm.db import db

    cid = register_citizen(op_client)
    appeal_path = path_of(post_appeal(op_client, cid, appeal_form()))
    html = op_client.get(appeal_path).get_data(as_text=True)
    event_id = db.session.execute(sa.select(ConsentEvent.id).where(ConsentEvent.citizen_id == cid)).scalars().first()
    resp = op_client.post(f"/consents/{event_id}/withdraw",
                          data={"csrf_token": csrf_from(html), "next": "https://evil.example/phish"})
    assert resp.status_code == 302
    assert urlparse(resp.headers["Location"]).netloc in ("", "localhost"), resp.headers["Location"]


def test_double_submitted_appeal_creates_one_appeal(op_client):
    from crm.appeals.models import Appeal

    cid = register_citizen(op_client)
    key = uuid.uuid4().hex
    first = post_appeal(op_client, cid, appeal_form(key))
    second = post_appeal(op_client, cid, appeal_form(key))
    assert first.status_code == second.status_code == 302
    assert path_of(first) == path_of(second)
    assert count(Appeal, Appeal.citizen_id == cid) == 1
    other = post_appeal(op_client, cid, appeal_form(uuid.uuid4().hex))
    assert other.status_code == 302 and path_of(other) != path_of(first)
    assert count(Appeal, Appeal.citizen_id == cid) == 2


def test_double_submitted_appeal_stores_one_call_and_one_set_of_consents(op_client):
    from crm.calls.models import Call
    from crm.consent.models import ConsentEvent

    cid = register_citizen(op_client)
    key = uuid.uuid4().hex
    for _ in range(2):
        assert post_appeal(op_client, cid, appeal_form(key, recording=(tone_wav(), "call.wav"))).status_code == 302
    assert count(Call, Call.citizen_id == cid) == 1
    assert count(ConsentEvent, ConsentEvent.citizen_id == cid) == 2


@pytest.mark.parametrize("phone", ["12345", "8 912 345", "+1 212 555 0100", "телефон"])
def test_malformed_phone_is_refused_in_russian(op_client, phone):
    from crm.citizens.models import Citizen

    resp = op_client.post("/citizens", data={"full_name": "Сидоров Пётр", "phone": phone})
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    m = re.search(r'<p class="err">([^<]+)</p>', html)
    assert m, html[:2000]
    assert re.search(r"[а-яё]{3}", m.group(1)), m.group(1)
    assert "Traceback" not in html
    assert count(Citizen) == 0


# --- refused uploads ------------------------------------------------------------------------------

BAD_UPLOADS = {"random_bytes": (random_bytes(), "звонок.wav"), "zero_bytes": (b"", "empty.wav")}
BAD_MESSAGES = {"random_bytes": "не является аудиозаписью", "zero_bytes": "пуст"}


@pytest.mark.parametrize("kind", sorted(BAD_UPLOADS))
def test_non_audio_upload_on_new_appeal_is_refused_and_nothing_stored(op_client, app, kind):
    """The recording is checked before anything is saved: the form comes back (422) with the
    reason on the file field, and no appeal, call or file is left behind."""
    from crm.appeals.models import Appeal
    from crm.calls.models import Call

    cid = register_citizen(op_client)
    before = stored_files(app)
    resp = post_appeal(op_client, cid, appeal_form(recording=BAD_UPLOADS[kind]))
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    m = re.search(r'<p class="err">([^<]+)</p>', page)
    assert m, page[:2000]
    assert BAD_MESSAGES[kind] in m.group(1), m.group(1)
    assert count(Call) == 0 and count(Appeal) == 0
    assert stored_files(app) == before


@pytest.mark.parametrize("kind", sorted(BAD_UPLOADS))
def test_non_audio_upload_on_appeal_page_is_refused_and_nothing_stored(op_client, app, kind):
    from crm.calls.models import Call

    cid = register_citizen(op_client)
    appeal_path = path_of(post_appeal(op_client, cid, appeal_form()))
    before = stored_files(app)
    data, name = BAD_UPLOADS[kind]
    resp = op_client.post(appeal_path + "/calls", data={"recording": (io.BytesIO(data), name)},
                          content_type="multipart/form-data")
    assert resp.status_code == 302 and path_of(resp) == appeal_path
    page = op_client.get(appeal_path).get_data(as_text=True)
    m = re.search(r'<div class="flash error"[^>]*>([^<]+)</div>', page)
    assert m and BAD_MESSAGES[kind] in m.group(1), page[:2000]
    assert count(Call) == 0
    assert stored_files(app) == before
    assert "Записей нет." in page


# --- no plaintext at rest -------------------------------------------------------------------------

def database_bytes(app) -> bytes:
    """Everything the database holds, as bytes: the SQLite file (and its -wal / -journal), read by
    another process (tests/files.py: reading them here would drop this process's SQLite locks), or a
    ``pg_dump`` of the PostgreSQL test database."""
    url = sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "sqlite":
        base = Path(url.database)
        parts = [read_from_another_process(base)]
        for suffix in ("-wal", "-journal"):
            side = Path(str(base) + suffix)
            if side.exists():
                parts.append(read_from_another_process(side))
        return b"".join(parts)
    if url.get_backend_name() == "postgresql":
        pg_dump = shutil.which("pg_dump")
        if not pg_dump:
            pytest.skip("pg_dump is not installed: cannot inspect the PostgreSQL database")
        plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
        out = subprocess.run([pg_dump, "--no-owner", "--data-only", plain], capture_output=True, timeout=120)
        assert out.returncode == 0, out.stderr.decode(errors="replace")
        assert b"COPY public.citizens" in out.stdout
        return out.stdout
    pytest.skip(f"no plaintext check for {url.get_backend_name()}")


def test_planted_name_and_phone_never_stored_in_plaintext(op_client, operator, app):
    from crm.citizens.models import Citizen
    from crm.db import db

    username = operator.username
    cid = register_citizen(op_client, full_name=PLANTED_NAME, phone=PLANTED_PHONE)
    resp = post_appeal(op_client, cid, appeal_form(recording=(tone_wav(), f"{PLANTED_NAME}.wav")))
    appeal_path = path_of(resp)
    html = op_client.get(appeal_path).get_data(as_text=True)
    op_client.post(appeal_path + "/reveal", data={"csrf_token": csrf_from(html)})
    found = op_client.post("/operator", data={"phone": PLANTED_PHONE}).get_data(as_text=True)
    assert PLANTED_NAME in found  # the search by blind index works and decrypts the name
    db.session.commit()
    db.session.remove()
    assert db.session.get(Citizen, cid).full_name == PLANTED_NAME

    dump = database_bytes(app)
    # positive controls: the dump does hold this test's rows (plain columns are found)
    assert username.encode() in dump and cid.encode() in dump
    needles = [PLANTED_NAME, *PLANTED_NAME.split(), PLANTED_NAME.lower(), PLANTED_PHONE, PLANTED_DIGITS,
               "000-11-22", "+7 912 000"]
    for needle in needles:
        raw = needle.encode("utf-8")
        assert raw not in dump, f"{needle!r} is stored in plaintext"
        # bytea columns are dumped as hex by pg_dump: look for the hex spelling as well
        assert raw.hex().encode() not in dump.lower(), f"{needle!r} is stored in plaintext (hex)"


# --- sessions -------------------------------------------------------------------------------------

def test_logout_revokes_the_session_cookie(op_client):
    assert op_client.get("/operator").status_code == 200
    cookie = op_client.get_cookie("session")
    assert cookie is not None
    old = cookie.value

    resp = op_client.post("/logout")
    assert resp.status_code == 302 and path_of(resp) == "/login"
    assert op_client.get("/operator").status_code == 302

    op_client.set_cookie("session", old)
    replay = op_client.get("/operator")
    assert replay.status_code == 302 and path_of(replay) == "/login"


# --- trial fixes: phone numbers out of URLs, no default category, idempotent consent, filters --------

def _digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


def test_operator_search_is_a_post_and_the_phone_never_reaches_a_url(op_client):
    from crm.db import db
    from crm.security.models import AccessLogEntry

    cid = register_citizen(op_client, full_name=PLANTED_NAME, phone=PLANTED_PHONE)
    page = op_client.get("/operator").get_data(as_text=True)
    form = re.search(r'<form method="(\w+)" action="([^"]*)"[^>]*>\s*(?:<input[^>]*>\s*)*<label>Телефон заявителя', page)
    assert form and form.group(1) == "post" and form.group(2) == "/operator", page[:2000]
    resp = op_client.post("/operator", data={"phone": PLANTED_PHONE})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Location" not in resp.headers  # rendered here, no redirect
    assert resp.request.method == "POST"
    # the request line werkzeug logs ("POST /operator HTTP/1.1") holds no digit of the number
    assert resp.request.full_path.rstrip("?") == "/operator"
    assert _digits(PLANTED_PHONE)[1:] not in _digits(resp.request.full_path)
    assert PLANTED_NAME in html and f"/citizens/{cid}/appeals/new" in html
    # links on the result page carry the citizen id only
    for href in re.findall(r'href="([^"]+)"', html):
        assert "phone" not in href and PLANTED_DIGITS not in _digits(href), href
    db.session.expire_all()
    assert db.session.execute(sa.select(AccessLogEntry).where(AccessLogEntry.action == "citizen.search",
                                                              AccessLogEntry.citizen_id == cid)).first()

    # a GET with the old query string neither searches nor shows anyone
    old = op_client.get("/operator", query_string={"phone": PLANTED_PHONE}).get_data(as_text=True)
    assert PLANTED_NAME not in old

    missing = op_client.post("/operator", data={"phone": "8 900 111-22-33"})
    assert missing.status_code == 200 and "Заявитель с этим номером не найден" in missing.get_data(as_text=True)
    # the new-citizen form is prefilled with the number searched for
    assert 'value="8 900 111-22-33"' in missing.get_data(as_text=True)
    bad = op_client.post("/operator", data={"phone": "12345"})
    assert bad.status_code == 422 and "Location" not in bad.headers
    empty = op_client.post("/operator", data={"phone": ""})
    assert empty.status_code == 422 and "Введите номер" in empty.get_data(as_text=True)


def test_new_appeal_has_no_preselected_category_or_topic(op_client):
    from crm.appeals.models import Appeal

    cid = register_citizen(op_client)
    html = op_client.get(f"/citizens/{cid}/appeals/new").get_data(as_text=True)
    for name, placeholder in (("category", "— выберите категорию —"), ("topic", "— выберите тематику —")):
        select = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S)
        assert select, name
        first = re.search(r"<option([^>]*)>([^<]*)</option>", select.group(1))
        assert first.group(2) == placeholder and 'value=""' in first.group(1), select.group(1)[:300]
        assert "selected" not in select.group(1), f"{name}: an option is preselected"
    before = count(Appeal)
    resp = post_appeal(op_client, cid, appeal_form(category="", topic=""))
    text = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "Выберите категорию обращения" in text and "Выберите тематику обращения" in text
    assert count(Appeal) == before
    data = appeal_form()
    data.pop("category")  # not sent at all: refused too, never defaulted to «Аварийная»
    assert post_appeal(op_client, cid, data).status_code == 422
    assert count(Appeal) == before
    assert post_appeal(op_client, cid, appeal_form(category="routine", topic="lift")).status_code == 302
    assert count(Appeal) == before + 1


def test_appeal_list_with_unknown_status_says_so(op_client):
    resp = op_client.get("/appeals", query_string={"status": "zzz"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "Неизвестное значение фильтра «статус»: «zzz»" in html and "Обращений пока нет." not in html
    ok = op_client.get("/appeals", query_string={"status": "closed"})
    assert ok.status_code == 200 and "Обращений пока нет." in ok.get_data(as_text=True)


def test_one_click_consent_twice_records_one_consent(op_client):
    from crm.consent.models import ConsentEvent
    from crm.db import db
    from crm.security.models import AccessLogEntry

    cid = register_citizen(op_client)
    appeal_path = path_of(post_appeal(op_client, cid, appeal_form(consent_sms="unknown", consent_recording="unknown")))
    html = op_client.get(appeal_path).get_data(as_text=True)
    assert "Согласие: SMS о статусе</button>" in html
    first = op_client.post(appeal_path + "/consents", data={"purpose": "sms_notifications", "given": "yes"})
    assert first.status_code == 302
    page = op_client.get(appeal_path).get_data(as_text=True)
    assert "Согласие записано." in page
    # the button is replaced by a note once the consent is in force
    assert "Согласие: SMS о статусе</button>" not in page and 'data-consent-given="sms_notifications"' in page
    assert "Согласие: Опрос</button>" in page  # the others stay
    second = op_client.post(appeal_path + "/consents", data={"purpose": "sms_notifications", "given": "yes"})
    assert second.status_code == 302
    assert "Согласие уже получено." in op_client.get(appeal_path).get_data(as_text=True)
    db.session.expire_all()
    events = db.session.execute(sa.select(ConsentEvent).where(ConsentEvent.citizen_id == cid,
                                                              ConsentEvent.purpose_code == "sms_notifications")).scalars().all()
    assert len(events) == 1 and events[0].status == "active"
    grants = db.session.execute(sa.select(AccessLogEntry.outcome).where(
        AccessLogEntry.citizen_id == cid, AccessLogEntry.action == "consent.grant",
        AccessLogEntry.purpose == "sms_notifications")).scalars().all()
    assert grants == ["ok", "repeat"]


def test_withdrawn_consent_shows_the_withdrawal_date(op_client, monkeypatch):
    from datetime import datetime, timezone

    from crm.consent import services as consent
    from crm.consent.models import ConsentEvent
    from crm.db import db

    cid = register_citizen(op_client)
    monkeypatch.setattr(consent, "utcnow", lambda: datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc))
    appeal_path = path_of(post_appeal(op_client, cid, appeal_form(consent_recording="unknown")))
    event_id = db.session.execute(sa.select(ConsentEvent.id).where(ConsentEvent.citizen_id == cid)).scalar_one()
    monkeypatch.setattr(consent, "utcnow", lambda: datetime(2026, 4, 15, 9, 0, tzinfo=timezone.utc))
    assert op_client.post(f"/consents/{event_id}/withdraw", data={"next": appeal_path}).status_code == 302
    monkeypatch.undo()
    visible = re.sub(r"<[^>]+>", " ", op_client.get(appeal_path).get_data(as_text=True))
    line = re.search(r"SMS-уведомления о статусе заявки —[^\n]*\n?[^\n]*", visible).group(0)
    assert "отозвано (15.04.2026" in line and "было дано 02.03.2026" in line, line
    # withdrawn: the one-click button is offered again
    assert "Согласие: SMS о статусе" in visible
