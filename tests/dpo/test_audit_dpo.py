"""The DPO's pages (access log filters, per-citizen report as page / CSV / print, lookup by phone),
alerts about unusual access (rules, idempotent scans, acknowledging is logged) and the periodic jobs."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from flask import g

from crm.consent import services as consent
from crm.db import db, utcnow
from crm.dpo import alerts
from crm.dpo.models import AccessAlert
from crm.security import audit
from crm.security.models import AccessLogEntry
from tests.factories import AppealFactory, CitizenFactory
from tests.mfa import sign_in

NAME, PHONE = "Лебедева Ольга Николаевна", "+7 916 222-33-44"
DESCRIPTION = "Протекает потолок в ванной у соседей снизу"


@pytest.fixture()
def dpo(make_user):
    return make_user("dpo")


@pytest.fixture()
def as_dpo(client, dpo):
    sign_in(client, dpo)
    g.pop("_login_user", None)
    return client


@pytest.fixture()
def case(ctx, make_user):
    """A citizen with an appeal, read by an operator."""

    op = make_user("operator", "op_petrova")
    citizen = CitizenFactory(full_name=NAME, phone=PHONE, address="ул. Гагарина, д. 7")
    appeal = AppealFactory(citizen=citizen, topic="roof_leak", description=DESCRIPTION, operator_id=op.id)
    audit.record("appeal.view", citizen_id=citizen.id, appeal_id=appeal.id, fields=["description"],
                 purpose="appeal_processing", actor=audit.Actor(op.id, op.username, op.role))
    db.session.commit()
    return citizen, appeal, op


def entries(**where) -> list[AccessLogEntry]:
    db.session.commit()
    q = db.select(AccessLogEntry).order_by(AccessLogEntry.seq)
    for k, v in where.items():
        q = q.where(getattr(AccessLogEntry, k) == v)
    return list(db.session.execute(q).scalars())


def get(client, url, **kw):
    g.pop("_login_user", None)
    resp = client.get(url, **kw)
    g.pop("_login_user", None)
    return resp


def post(client, url, **kw):
    g.pop("_login_user", None)
    resp = client.post(url, **kw)
    g.pop("_login_user", None)
    return resp


# --- who may see the DPO's pages ---------------------------------------------------------------------

@pytest.mark.parametrize("role", ["operator", "supervisor", "admin", "executor"])
def test_dpo_pages_are_for_the_dpo_only(client, make_user, role, case):
    citizen, _, _ = case
    user = make_user(role)
    sign_in(client, user)
    for url in ("/dpo/access-log", "/dpo/alerts", "/dpo/citizens", f"/dpo/citizens/{citizen.id}/access-report",
                f"/dpo/citizens/{citizen.id}/access-report/print"):
        assert get(client, url).status_code == 403, url
    assert post(client, "/dpo/alerts/scan").status_code == 403


def test_anonymous_is_sent_to_login(client, case):
    assert client.get("/dpo/access-log").status_code == 302


# --- the access log page -----------------------------------------------------------------------------

def test_access_log_filters(as_dpo, case, make_user):
    citizen, appeal, op = case
    other = make_user("operator", "op_sidorov")
    audit.record("citizen.reveal", citizen_id="c-other", purpose="sms_notifications",
                 actor=audit.Actor(other.id, other.username, other.role))
    db.session.commit()
    html = get(as_dpo, "/dpo/access-log").get_data(as_text=True)
    assert "op_petrova" in html and "op_sidorov" in html and "Журнал доступа" in html

    def shown(**query):
        return get(as_dpo, "/dpo/access-log", query_string=query).get_data(as_text=True)

    page = shown(citizen_id=citizen.id)
    assert citizen.id[:8] in page and "c-other" not in page
    page = shown(actor="op_sidorov")
    assert "c-other" in page and citizen.id[:8] not in page
    page = shown(action="citizen.reveal")
    assert "c-other" in page and citizen.id[:8] not in page
    page = shown(purpose="appeal_processing")
    assert citizen.id[:8] in page and "c-other" not in page
    today = utcnow().date()
    assert "c-other" in shown(**{"from": (today - timedelta(days=1)).isoformat(), "to": (today + timedelta(days=1)).isoformat()})
    assert "Записей нет" in shown(**{"from": "2001-01-01", "to": "2001-01-02"})
    assert "ГГГГ-ММ-ДД" in shown(**{"from": "yesterday"})  # a bad date is explained, not a 500
    assert DESCRIPTION not in page  # the DPO reads logs, not appeal contents


def test_access_log_pages_by_seq(as_dpo, ctx):
    for i in range(130):
        audit.record("test.append", detail=str(i), actor=audit.system_actor("t"))
    db.session.commit()
    first = get(as_dpo, "/dpo/access-log").get_data(as_text=True)
    assert "старее" in first
    oldest_shown = min(int(x) for x in __import__("re").findall(r"<tr><td>(\d+)</td>", first))
    second = get(as_dpo, "/dpo/access-log", query_string={"before": oldest_shown}).get_data(as_text=True)
    assert f"<tr><td>{oldest_shown - 1}</td>" in second and "<tr><td>1</td>" in second


class _LogPage(HTMLParser):
    """The access-log page as data: ``rows`` ``{seq: [cell, ...]}`` where a cell is ``{"text", "titles",
    "codes", "badges"}`` (visible text, ``title`` attributes, ``<code>`` texts, badge classes), and
    ``selects`` ``{name: [{"value", "text", "selected", "group"}, ...]}``."""

    def __init__(self, html: str):
        super().__init__()
        self.rows: dict[int, list[dict]] = {}
        self.selects: dict[str, list[dict]] = {}
        self._row = self._cell = self._option = self._select = None
        self._group = ""
        self._in_code = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tbody":
            self._row = None
        elif tag == "tr":
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = {"text": "", "titles": [], "codes": [], "badges": []}
            self._row.append(self._cell)
        elif tag == "select":
            self._select = self.selects.setdefault(a["name"], [])
        elif tag == "optgroup":
            self._group = a["label"]
        elif tag == "option" and self._select is not None:
            self._option = {"value": a["value"], "text": "", "selected": "selected" in a, "group": self._group}
            self._select.append(self._option)
        if self._cell is not None:
            if tag == "br":
                self._cell["text"] += " "
            if "title" in a:
                self._cell["titles"].append(a["title"])
            if "badge" in (a.get("class") or "").split():
                self._cell["badges"].append(a["class"])
            self._in_code = self._in_code or tag == "code"

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        elif tag == "tr" and self._row:
            if self._row[0]["text"].strip().isdigit():
                self.rows[int(self._row[0]["text"])] = self._row
            self._row = None
        elif tag == "option":
            self._option = None
        elif tag == "optgroup":
            self._group = ""
        elif tag == "select":
            self._select = None
        elif tag == "code":
            self._in_code = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
            if self._in_code:
                self._cell["codes"].append(data)
        if self._option is not None:
            self._option["text"] += data


COLUMNS = {"who": 2, "role": 3, "action": 4, "fields": 6, "purpose": 7, "outcome": 10, "detail": 11}


def log_page(client, **query) -> _LogPage:
    resp = get(client, "/dpo/access-log", query_string=query)
    assert resp.status_code == 200
    return _LogPage(resp.get_data(as_text=True))


def cell(page: _LogPage, seq: int, column: str) -> dict:
    row = page.rows[seq]
    assert len(row) == 12, row
    c = row[COLUMNS[column]]
    return {**c, "text": " ".join(c["text"].split())}


@pytest.fixture()
def mixed_log(case):
    """Entries by a staff member, a background job, a citizen's self-service page, a key rotation
    and an action this version has no label for; ``{name: seq}``."""
    from crm.consent.selfservice import CITIZEN

    citizen, appeal, op = case
    seqs = {}
    for name, action, kw in (
            ("staff", "citizen.reveal", dict(citizen_id=citizen.id, fields=["phone", "address"],
                                             purpose="appeal_processing", actor=audit.Actor(op.id, op.username, op.role))),
            ("job", "call.decrypt", dict(citizen_id=citizen.id, fields=["recording"], purpose="call_recording_qa",
                                         actor=audit.system_actor("transcribe_call"))),
            ("citizen", "selfservice.refused", dict(purpose=audit.REPORT_PURPOSE, outcome="denied", actor=CITIZEN)),
            ("keys", "keys.index_start", dict(actor=audit.system_actor("keys_index"))),
            ("unknown", "test.unlabelled", dict(fields=["shoe_size"], purpose="astrology", outcome="weird",
                                                actor=audit.system_actor("t")))):
        audit.record(action, **kw)
        db.session.commit()
        seqs[name] = audit.head()[0]
    return seqs


def test_access_log_shows_russian_labels_beside_codes(as_dpo, case, mixed_log):
    page = log_page(as_dpo)
    staff = mixed_log["staff"]
    who = cell(page, staff, "who")
    assert who["text"] == "Тест operator op_petrova" and who["codes"] == ["op_petrova"]
    assert cell(page, staff, "role") == {"text": "оператор", "titles": ["operator"], "codes": [], "badges": []}
    action = cell(page, staff, "action")
    assert action["text"] == "раскрытие телефона и адреса citizen.reveal"
    assert action["titles"] == ["citizen.reveal"] and action["codes"] == ["citizen.reveal"]
    fields = cell(page, staff, "fields")
    assert fields["text"] == "адрес, телефон" and fields["titles"] == ["address,phone"]
    purpose = cell(page, staff, "purpose")
    assert purpose["text"] == "Рассмотрение обращения" and purpose["titles"] == ["appeal_processing"]
    outcome = cell(page, staff, "outcome")
    assert outcome["text"] == "выполнено" and outcome["titles"] == ["ok"] and not outcome["badges"]

    job = mixed_log["job"]
    assert cell(page, job, "who")["text"] == "система: расшифровка звонка job:transcribe_call"
    assert cell(page, job, "role")["text"] == "система" and cell(page, job, "role")["titles"] == ["system"]
    assert cell(page, job, "action")["text"] == "расшифрование записи для распознавания речи call.decrypt"
    assert cell(page, job, "fields")["text"] == "запись звонка"
    assert cell(page, job, "purpose")["text"] == "Запись звонка для контроля качества"

    by_citizen = mixed_log["citizen"]
    assert cell(page, by_citizen, "who")["text"] == "заявитель (страница самообслуживания) citizen:selfservice"
    assert cell(page, by_citizen, "role")["text"] == "заявитель"
    assert cell(page, by_citizen, "purpose")["text"] == "запрос субъекта ПДн / проверка"
    denied = cell(page, by_citizen, "outcome")
    assert denied["text"] == "отказано" and denied["titles"] == ["denied"] and denied["badges"] == ["badge failed"]

    keys = mixed_log["keys"]
    assert cell(page, keys, "who")["text"] == "система: обновление поисковых индексов job:keys_index"
    assert cell(page, keys, "action")["text"] == "начало смены ключа поискового индекса keys.index_start"

    # codes with no label are shown as written, as code, never dropped
    unknown = mixed_log["unknown"]
    for column, code in (("who", "job:t"), ("action", "test.unlabelled"), ("fields", "shoe_size"),
                         ("purpose", "astrology"), ("outcome", "weird")):
        c = cell(page, unknown, column)
        assert c["codes"] == [code] and c["text"] == (f"система: t {code}" if column == "who" else code), column

    # the DPO's own sign-in: a staff member by name, the action by its label
    own = next(seq for seq, row in page.rows.items() if "auth.login" in row[COLUMNS["action"]]["titles"])
    assert cell(page, own, "who")["text"].startswith("Тест dpo ")
    assert cell(page, own, "action")["text"] == "вход в систему auth.login"
    assert cell(page, own, "role")["text"] == "ответственный за ПДн"


def test_access_log_page_and_exports_show_an_entrys_detail(ctx, as_dpo, dpo, case, make_user, api_token):
    """An entry's ``detail`` (why a reveal was logged as it was: «no purpose given» for an API reveal)
    is on the DPO's page under «Подробности», escaped, and in the access report's CSV and the API."""
    from tests.factories import CallFactory

    citizen, appeal, op = case
    consent.record(citizen, "call_recording_qa", channel="call", given=True)
    call = CallFactory(operator=op, citizen=citizen, appeal=appeal)
    sup = make_user("supervisor")
    api = ctx.test_client()
    assert api.get(f"/api/v1/calls/{call.id}", query_string={"reveal": "true"},
                   headers=api_token(sup)).status_code == 200
    [reveal] = entries(action="transcript.reveal", actor_id=sup.id)
    assert "no purpose given" in reveal.detail
    audit.record("test.detail", citizen_id=citizen.id, detail='<b>bold</b> & "quoted"',
                 actor=audit.system_actor("t"))
    db.session.commit()
    tagged = audit.head()[0]

    html = get(as_dpo, "/dpo/access-log").get_data(as_text=True)
    page = _LogPage(html)
    assert "Подробности" in html
    # known phrases in Russian, the stored (hash-chained) text as the cell's title
    assert "цель не указана (по умолчанию API)" in cell(page, reveal.seq, "detail")["text"]
    assert "no purpose given" not in cell(page, reveal.seq, "detail")["text"]
    assert f'title="{reveal.detail}"' in html
    assert cell(page, tagged, "detail")["text"] == '<b>bold</b> & "quoted"'  # unknown: as stored, shown as text,
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt; &amp; " in html  # not markup

    resp = get(as_dpo, f"/dpo/citizens/{citizen.id}/access-report", query_string={"format": "csv"})
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    column = rows[0].index("Подробности")
    by_seq = {int(r[0]): r for r in rows[1:]}
    assert "цель не указана (по умолчанию API)" in by_seq[reveal.seq][column]
    assert by_seq[reveal.seq][rows[0].index("Подробности (как записано)")] == reveal.detail
    assert by_seq[tagged][column] == '<b>bold</b> & "quoted"'

    body = api.get("/api/v1/audit", query_string={"citizen_id": citizen.id}, headers=api_token(dpo)).get_json()
    assert {e["seq"]: e["detail"] for e in body["items"]}[reveal.seq] == reveal.detail


def test_access_log_filters_offer_labels_and_take_codes(as_dpo, case, mixed_log):
    page = log_page(as_dpo)
    actions = {o["value"]: o for o in page.selects["action"]}
    labelled = audit.ACTION_LABELS
    assert [o["value"] for o in page.selects["action"]].count("citizen.reveal") == 1
    assert set(actions) == set(labelled) | {""}  # every labelled action once, and «все»
    assert actions["citizen.reveal"]["text"] == "раскрытие телефона и адреса (citizen.reveal)"
    assert actions["citizen.reveal"]["group"] == "Чтение персональных данных"
    assert actions["keys.index_start"]["group"] == "Безопасность, ключи, журнал"
    assert actions[""]["text"] == "все" and not any(o["selected"] for o in actions.values())
    purposes = {o["value"]: o["text"] for o in page.selects["purpose"]}
    assert purposes == {"": "все"} | {code: f"{name} ({code})" for code, name in consent.purpose_names().items()}
    actors = {o["value"]: o for o in page.selects["actor"]}
    assert actors["op_petrova"]["text"] == "Тест operator, оператор (op_petrova)"
    assert actors["op_petrova"]["group"] == "Сотрудники"
    assert actors["job:transcribe_call"]["text"] == "система: расшифровка звонка (job:transcribe_call)"
    assert actors["job:transcribe_call"]["group"] == "Система"
    assert actors["citizen:selfservice"]["text"] == "заявитель (страница самообслуживания) (citizen:selfservice)"

    # each option's code filters the log: the rows shown carry that code, the option stays selected
    for name, value, column, seq in (("actor", "job:transcribe_call", "who", mixed_log["job"]),
                                     ("actor", "citizen:selfservice", "who", mixed_log["citizen"]),
                                     ("action", "keys.index_start", "action", mixed_log["keys"]),
                                     ("purpose", "call_recording_qa", "purpose", mixed_log["job"])):
        filtered = log_page(as_dpo, **{name: value})
        assert seq in filtered.rows and mixed_log["staff"] not in filtered.rows, value
        for shown in filtered.rows:
            c = cell(filtered, shown, column)
            assert value in c["codes"] + c["titles"], (value, c)
        chosen = [o["value"] for o in filtered.selects[name] if o["selected"]]
        assert chosen == [value]
    both = log_page(as_dpo, actor="op_petrova", action="citizen.reveal", purpose="appeal_processing")
    assert list(both.rows) == [mixed_log["staff"]]

    # a code from a link that no option has (an alert's login, an older action) still filters, shown selected
    odd = log_page(as_dpo, action="test.unlabelled", actor="job:t")
    assert list(odd.rows) == [mixed_log["unknown"]]
    assert [(o["value"], o["text"]) for o in odd.selects["action"] if o["selected"]] == [("test.unlabelled",) * 2]
    assert [(o["value"], o["text"]) for o in odd.selects["actor"] if o["selected"]] == [("job:t", "система: t (job:t)")]


def test_access_log_paging_keeps_a_filter_chosen_by_label(as_dpo, ctx):
    for i in range(130):
        audit.record("call.decrypt" if i % 2 else "keys.rewrap", detail=str(i), purpose="call_recording_qa",
                     actor=audit.system_actor("transcribe_call" if i % 2 else "keys_rotate"))
    db.session.commit()
    html = get(as_dpo, "/dpo/access-log", query_string={"action": "keys.rewrap"}).get_data(as_text=True)
    first = _LogPage(html)
    assert len(first.rows) == 65 and "старее" not in html
    assert {cell(first, s, "who")["text"] for s in first.rows} == {"система: смена ключей шифрования job:keys_rotate"}
    html = get(as_dpo, "/dpo/access-log", query_string={"purpose": "call_recording_qa"}).get_data(as_text=True)
    first = _LogPage(html)
    assert len(first.rows) == 100
    older = re.search(r'href="([^"]+)">старее', html).group(1).replace("&amp;", "&")
    assert "purpose=call_recording_qa" in older
    second = _LogPage(get(as_dpo, older).get_data(as_text=True))
    assert len(second.rows) == 30 and not set(first.rows) & set(second.rows)
    assert {cell(second, s, "purpose")["titles"][0] for s in second.rows} == {"call_recording_qa"}
    assert [o["value"] for o in second.selects["purpose"] if o["selected"]] == ["call_recording_qa"]

# --- the per-citizen access report -----------------------------------------------------------------

def test_access_report_page_csv_and_print(as_dpo, case, dpo):
    citizen, appeal, op = case
    before = len(entries(citizen_id=citizen.id))
    html = get(as_dpo, f"/dpo/citizens/{citizen.id}/access-report").get_data(as_text=True)
    assert NAME in html  # the person the report is about
    assert "Тест operator" in html and "просмотр обращения" in html and "Рассмотрение обращения" in html
    assert f"№ {appeal.number}" in html
    assert DESCRIPTION not in html and "Гагарина" not in html  # no appeal contents, no address
    reports = entries(citizen_id=citizen.id, action="audit.report")
    assert len(reports) == 1 and reports[0].actor_id == dpo.id and reports[0].purpose == "data_subject_request"
    assert any(e.action == "citizen.view" and e.actor_id == dpo.id for e in entries(citizen_id=citizen.id))

    resp = get(as_dpo, f"/dpo/citizens/{citizen.id}/access-report", query_string={"format": "csv"})
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][0] == "№ записи" and "Хеш записи" in rows[0]
    body = rows[1:]
    assert len(body) >= before  # every entry about the citizen up to the report
    actions = [r[5] for r in body]
    assert {"citizen.create", "appeal.create", "appeal.view"} <= set(actions)
    assert any(appeal.number in r for r in body)
    hashes = {e.seq: e.hash for e in entries(citizen_id=citizen.id)}
    assert all(hashes[int(r[0])] == r[-1] for r in body)

    printed = get(as_dpo, f"/dpo/citizens/{citizen.id}/access-report/print").get_data(as_text=True)
    assert "@media print" in printed and "152-ФЗ" in printed and NAME in printed
    assert "<nav>" not in printed and DESCRIPTION not in printed
    assert len(entries(citizen_id=citizen.id, action="audit.report")) == 3


def test_access_report_period(as_dpo, case):
    citizen, _, _ = case
    csv_text = get(as_dpo, f"/dpo/citizens/{citizen.id}/access-report",
                   query_string={"format": "csv", "from": "2001-01-01", "to": "2001-01-31"}).get_data(as_text=True)
    assert len(list(csv.reader(io.StringIO(csv_text.lstrip("\ufeff"))))) == 1  # header only


def test_lookup_by_phone_is_logged_for_the_dsr(as_dpo, case, dpo):
    citizen, _, _ = case
    g.pop("_login_user", None)
    resp = as_dpo.post("/dpo/citizens", data={"phone": "8 916 222 33 44"})
    g.pop("_login_user", None)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and citizen.id in html and NAME in html
    assert "Location" not in resp.headers  # rendered in the response: no redirect carrying the number
    search = entries(action="citizen.search", actor_id=dpo.id)
    assert [(e.citizen_id, e.purpose) for e in search] == [(citizen.id, "data_subject_request")]
    resp = get(as_dpo, "/dpo/citizens", query_string={"citizen_id": citizen.id})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/dpo/citizens/{citizen.id}/access-report")


def test_dpo_lookup_by_phone_is_a_post_and_keeps_the_number_out_of_urls(as_dpo, case):
    import re

    citizen, _, _ = case
    page = get(as_dpo, "/dpo/citizens").get_data(as_text=True)
    assert re.search(r'<form method="post" action="/dpo/citizens"', page)
    assert 'name="phone"' not in re.sub(r'<form method="post".*?</form>', "", page, flags=re.S)  # no GET phone field
    g.pop("_login_user", None)
    resp = as_dpo.post("/dpo/citizens", data={"phone": PHONE})
    g.pop("_login_user", None)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and resp.request.method == "POST" and "Location" not in resp.headers
    assert resp.request.full_path.rstrip("?") == "/dpo/citizens"  # the logged request line: no number
    assert NAME in html
    links = re.findall(r'href="([^"]+)"', html)
    assert f"/dpo/citizens/{citizen.id}/access-report" in links
    assert not [h for h in links if "phone" in h or "2223344" in re.sub(r"\D", "", h)]
    # the old GET spelling shows no one
    assert NAME not in get(as_dpo, "/dpo/citizens", query_string={"phone": PHONE}).get_data(as_text=True)
    g.pop("_login_user", None)
    empty = as_dpo.post("/dpo/citizens", data={"phone": ""})
    assert empty.status_code == 422 and "Введите номер телефона" in empty.get_data(as_text=True)
    g.pop("_login_user", None)


def test_unknown_citizen_id_is_an_error_not_an_empty_report(as_dpo, case):
    resp = get(as_dpo, "/dpo/citizens", query_string={"citizen_id": "bad"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 404 and "Заявитель с id «bad» не найден" in html
    assert "Скачать CSV" not in html and "access-report" not in html
    direct = get(as_dpo, "/dpo/citizens/bad/access-report")
    assert direct.status_code == 404 and "Скачать CSV" not in direct.get_data(as_text=True)
    assert get(as_dpo, "/dpo/citizens/bad/access-report", query_string={"format": "csv"}).status_code == 404
    assert get(as_dpo, "/dpo/citizens/bad/access-report/print").status_code == 404
    assert not entries(citizen_id="bad", action="audit.report")


def test_access_report_with_start_after_end_says_so(as_dpo, case):
    citizen, _, _ = case
    url = f"/dpo/citizens/{citizen.id}/access-report"
    period = {"from": "2026-05-10", "to": "2026-05-01"}
    resp = get(as_dpo, url, query_string=period)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "Дата начала периода (2026-05-10) позже даты окончания (2026-05-01)" in html
    assert "Скачать CSV" not in html and "Обращений к данным за период нет." not in html
    assert 'value="2026-05-10"' in html and 'value="2026-05-01"' in html  # kept in the form to correct
    csv_resp = get(as_dpo, url, query_string={**period, "format": "csv"})
    assert csv_resp.status_code == 400 and "позже даты окончания" in csv_resp.get_data(as_text=True)
    assert get(as_dpo, url + "/print", query_string=period).status_code == 400
    bad = get(as_dpo, url, query_string={"from": "10.05.2026"})
    assert bad.status_code == 400 and "не дата в формате ГГГГ-ММ-ДД" in bad.get_data(as_text=True)
    same_day = get(as_dpo, url, query_string={"from": "2026-05-01", "to": "2026-05-01"})
    assert same_day.status_code == 200
    log = get(as_dpo, "/dpo/access-log", query_string=period)
    assert log.status_code == 200 and "позже даты окончания" in log.get_data(as_text=True)


# --- alerts ---------------------------------------------------------------------------------------

def _read(user, citizen_id, action="citizen.view", **kw):
    audit.record(action, citizen_id=citizen_id, fields=["full_name"], purpose=kw.pop("purpose", "appeal_processing"),
                 actor=audit.Actor(user.id, user.username, user.role), **kw)


def test_bulk_access_alert(ctx, make_user, monkeypatch):
    monkeypatch.setitem(ctx.config, "CRM_AUDIT_ALERT_MAX_CITIZENS", 3)
    op, calm = make_user("operator", "op_bulk"), make_user("operator", "op_calm")
    for i in range(5):
        _read(op, f"citizen-{i}", appeal_id=f"appeal-{i}")
    for i in range(3):
        _read(calm, f"citizen-{i}", appeal_id=f"appeal-{i}")
    db.session.commit()
    assert alerts.scan()["new"] == 1
    alert = db.session.execute(db.select(AccessAlert)).scalar_one()
    assert (alert.rule, alert.actor_id, alert.count) == ("bulk_access", op.id, 5)
    assert "5 заявителей" in alert.detail
    assert alerts.scan() == {"new": 0, "updated": 0}  # idempotent
    _read(op, "citizen-9", appeal_id="appeal-9")
    db.session.commit()
    assert alerts.scan()["updated"] == 1
    assert db.session.get(AccessAlert, alert.id).count == 6
    scans = entries(action="audit.alert_scan")
    assert len(scans) == 2 and scans[0].actor == "job:audit_alert_scan"


def test_untied_access_alert_spares_lookups_followed_by_work(ctx, make_user):
    op = make_user("operator", "op_curious")
    _read(op, "browsed")                                    # looked at, nothing done
    _read(op, "caller", action="citizen.search")            # looked up during a call ...
    _read(op, "caller", action="appeal.create", appeal_id="a1")  # ... and the appeal registered
    _read(op, "dsr", purpose="data_subject_request")        # exempt purpose
    db.session.commit()
    assert alerts.scan()["new"] == 0  # not judged until the window has passed
    later = utcnow() + timedelta(hours=2)
    assert alerts.scan(now=later)["new"] == 1
    alert = db.session.execute(db.select(AccessAlert)).scalar_one()
    assert (alert.rule, alert.citizen_id, alert.actor_id) == ("untied_access", "browsed", op.id)


def test_after_hours_alert(ctx, make_user, monkeypatch):
    op = make_user("operator", "op_night")
    _read(op, "c1", appeal_id="a")
    _read(op, "c2", appeal_id="b")
    audit.record("test.system", citizen_id="c1", actor=audit.system_actor("nightly"))  # jobs do not count
    db.session.commit()
    monkeypatch.setitem(ctx.config, "CRM_AUDIT_WORKING_HOURS", "00:00-00:00")  # around the clock
    assert alerts.scan()["new"] == 0
    db.session.execute(db.delete(AccessAlert))
    db.session.commit()
    monkeypatch.setitem(ctx.config, "CRM_AUDIT_WORKING_DAYS", ())  # no working days: everything is after hours
    assert alerts.scan()["new"] == 1
    alert = db.session.execute(db.select(AccessAlert)).scalar_one()
    assert (alert.rule, alert.actor_id, alert.count) == ("after_hours", op.id, 2)


def test_alerts_page_scan_and_acknowledge(as_dpo, ctx, make_user, monkeypatch, dpo):
    monkeypatch.setitem(ctx.config, "CRM_AUDIT_WORKING_DAYS", ())
    op = make_user("operator", "op_late")
    _read(op, "c1", appeal_id="a")
    db.session.commit()
    resp = post(as_dpo, "/dpo/alerts/scan")
    assert resp.status_code == 302
    html = get(as_dpo, "/dpo/alerts").get_data(as_text=True)
    assert "доступ в нерабочее время" in html and "op_late" in html and "не рассмотрено" in html
    alert = db.session.execute(db.select(AccessAlert)).scalar_one()
    assert entries(action="audit.alert_scan")[0].actor_id == dpo.id
    resp = post(as_dpo, f"/dpo/alerts/{alert.id}/acknowledge",
                data={"comment": "ночная смена АДС", "next": "https://evil.example/"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/dpo/alerts")
    db.session.expire_all()
    alert = db.session.get(AccessAlert, alert.id)
    assert alert.ack_by == dpo.id and alert.ack_comment == "ночная смена АДС" and alert.ack_at
    ack = entries(action="audit.alert_ack")
    assert len(ack) == 1 and ack[0].actor_id == dpo.id and f"alert={alert.id}" in ack[0].detail
    assert "Оповещений нет" in get(as_dpo, "/dpo/alerts").get_data(as_text=True)  # open ones only
    assert "ночная смена АДС" in get(as_dpo, "/dpo/alerts", query_string={"status": "all"}).get_data(as_text=True)
    assert alerts.scan() == {"new": 0, "updated": 0}  # an acknowledged alert is not reopened by a rescan


# --- periodic jobs ---------------------------------------------------------------------------------

def test_checkpoint_and_scan_jobs_run_in_the_worker_and_keep_one_schedule(ctx, run_worker, tmp_path, monkeypatch):
    from rq.registry import ScheduledJobRegistry

    from crm import jobs, schedule
    from crm.security import checkpoints

    monkeypatch.setitem(ctx.config, "CRM_AUDIT_CHECKPOINT_DIR", str(tmp_path / "cp"))
    monkeypatch.setitem(ctx.config, "CRM_AUDIT_SIGNING_KEY", str(tmp_path / "key" / "signing.key"))
    audit.record("test.append", actor=audit.system_actor("t"))
    db.session.commit()
    q = jobs.queue("default")
    try:
        schedule.plant(only=["audit-checkpoint"])
        schedule.plant(only=["audit-checkpoint"])
        schedule.plant(only=["audit-alert-scan"])
        scheduled = ScheduledJobRegistry(queue=q).get_job_ids()
        assert sorted(scheduled) == sorted([q.name + "-audit-checkpoint", q.name + "-audit-alert-scan"])
        jobs.enqueue("crm.security.checkpoints.checkpoint_job")
        jobs.enqueue("crm.dpo.alerts.scan_job")
        run_worker()
        db.session.commit()
        lines, _ = checkpoints.read_lines(tmp_path / "cp")
        assert len(lines) == 1 and lines[0].data["seq"] == 1
        logged = entries(action="audit.checkpoint")
        assert len(logged) == 1 and logged[0].actor == "job:audit_checkpoint"
    finally:
        for job_id in ScheduledJobRegistry(queue=q).get_job_ids():
            ScheduledJobRegistry(queue=q).remove(job_id, delete_job=True)
        q.empty()
