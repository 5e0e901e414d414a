"""Languages (crm.i18n): Russian by default, English on request, every marked message translated,
dates in CRM_TIMEZONE through Flask-Babel's formatter."""
from __future__ import annotations

import ast
import re
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatch
from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from crm import create_app, i18n

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "crm" / "translations"


def _source_messages() -> set[str]:
    """The message ids marked in the code and templates, extracted as `make translations` does
    (``-k _l``: lazy_gettext in form classes)."""
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    keywords = {**DEFAULT_KEYWORDS, "_l": None}
    ids = set()
    for _file, _line, message, _comments, _context in extract_from_dir(str(ROOT / "crm"), method_map,
                                                                       keywords=keywords):
        ids.update([message] if isinstance(message, str) else [m for m in message if m])
    return ids


def _catalogue(locale: str):
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f, locale=locale, abort_invalid=True)


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


# Templates whose Russian text is not (yet) marked for translation (glob patterns), each with its reason.
# Every other template's visible text goes through ``_()``.
NOT_TRANSLATED = {
}
CYRILLIC = re.compile(r"[А-Яа-яЁё]")
# a translated literal inside an expression: _("...") / _('...')
MARKED = re.compile(r"""_\(\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""", re.S)
COMMENT = re.compile(r"\{#.*?#\}", re.S)


def _bare_russian(source: str) -> list[tuple[int, str]]:
    """(line, text) of the Russian text in a template that is neither in a comment nor in ``_()``."""
    blanked = COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), source)
    blanked = MARKED.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), blanked)
    return [(n, line.strip()) for n, line in enumerate(blanked.splitlines(), 1) if CYRILLIC.search(line)]


def test_template_text_goes_through_gettext():
    templates = ROOT / "crm" / "templates"
    found = {}
    for path in sorted(templates.rglob("*.html")):
        name = path.relative_to(templates).as_posix()
        if any(fnmatch(name, pattern) for pattern in NOT_TRANSLATED):
            continue
        bare = _bare_russian(path.read_text(encoding="utf-8"))
        if bare:
            found[name] = bare[:3]
    assert not found, f"Russian text outside _() (wrap it, then `make translations`): {found}"


def test_the_scanner_sees_bare_text_and_accepts_marked_text():
    assert _bare_russian('<p>{{ _("Готово %(n)s", n=1) }}</p>{# Комментарий #}') == []
    assert _bare_russian("{{ {'a': _('да')}['a'] }}") == []
    assert _bare_russian("<p>\n<b>Готово</b></p>") == [(2, "<b>Готово</b></p>")]
    assert _bare_russian("{{ 'да' if x else 'нет' }}") == [(1, "{{ 'да' if x else 'нет' }}")]


def test_english_pages_have_no_russian_chrome(client, make_user, login):
    """Pages in English (?lang=en): their own text translated; only the people's names (data) stay."""
    page = client.get("/login?lang=en").get_data(as_text=True)
    assert "Staff sign-in" in page and "Sign in" in page and not CYRILLIC.search(page)
    assert '<html lang="en">' in page and '<html lang="ru">' in client.get("/login?lang=ru").get_data(as_text=True)

    for role, urls in (("operator", ("/operator", "/appeals", "/qa/my")),
                       ("supervisor", ("/qa/queue", "/qa/calls", "/qa/evaluations", "/qa/dashboard",
                                       "/qa/calibration", "/qa/disputes"))):
        user = make_user(role)
        login(user)
        for url in urls:
            resp = client.get(url + "?lang=en")
            assert resp.status_code == 200, url
            text = re.sub(r"Тест \w+", "", resp.get_data(as_text=True))  # make_user's people (data)
            assert "Housing Services Hotline" in text and "Sign out" in text, url
            bare = sorted(set(CYRILLIC.findall(text)))
            assert not bare, (url, [line for line in text.splitlines() if CYRILLIC.search(line)][:5])
        client.post("/logout", data={})

    # the same page stays Russian by default
    user = make_user("operator")
    login(user)
    page = client.get("/operator?lang=ru").get_data(as_text=True)
    assert "Приём обращений" in page and "Поиск заявителя" in page and "Выйти" in page


def test_dpo_pages_and_flashes_in_english(client, make_user, login):
    """The DPO's pages go through gettext like the rest of the UI (issue 12 point 9): in English they carry
    no Russian of their own (the codes' Russian labels from the register and the log are data here), and
    the DPO's flashes are translated."""
    login(make_user("dpo"))
    for url in ("/dpo/destruction-acts", "/dpo/sms-outbox", "/dpo/retention", "/dpo/citizens"):
        resp = client.get(url + "?lang=en")
        assert resp.status_code == 200, url
        text = re.sub(r"Тест \w+", "", resp.get_data(as_text=True))
        assert "Sign out" in text, url
        assert not CYRILLIC.search(text), (url, [line for line in text.splitlines() if CYRILLIC.search(line)][:5])
    page = client.post("/dpo/alerts/scan", follow_redirects=True).get_data(as_text=True)
    assert "Check done: new alerts 0" in page and "Проверка выполнена" not in page
    page = client.get("/dpo/destruction-acts?lang=ru").get_data(as_text=True)
    assert "Акты уничтожения персональных данных" in page


def test_access_log_labels_follow_the_language(client, make_user, login):
    """The access log's own vocabulary (actions, roles, outcomes, system actors, field categories) is
    translated where shown: the DPO's log viewer in English has no Russian label of an action, while
    outside a request (documents built by jobs) the Russian text stays."""
    from crm.security import audit

    dpo = make_user("dpo")
    login(dpo)
    client.get("/dpo/retention")  # writes at least one entry of the DPO's own
    page = client.get("/dpo/access-log?lang=en").get_data(as_text=True)
    assert "signed in" in page or "data protection officer" in page
    for code, english in (("citizen.view", "citizen card viewed"), ("auth.login", "signed in"),
                          ("consent.withdraw", "consent withdrawn"), ("erasure.approve", "erasure approved")):
        assert audit.ACTION_LABELS[code] not in page, code  # the Russian label (the action filter, the rows)
        assert english in page, code
    assert "system: retention enforcement" in page
    assert audit.action_label("citizen.view") == "просмотр карточки заявителя"  # no request: Russian
    assert audit.actor_label("job:retention") == "система: соблюдение сроков хранения"


def test_citizen_self_service_page_in_english(client):
    page = client.get("/my?lang=en").get_data(as_text=True)
    assert "My consents to data processing" in page and "Get a code" in page and not CYRILLIC.search(page)


def test_form_labels_and_catalogue_labels_follow_the_language(client, make_user, login):
    login(make_user("operator"))
    page = client.get("/appeals?lang=en").get_data(as_text=True)
    assert "Closed" in page and "Handed over to the contractor" in page  # the status filter (STATUSES)
    page = client.get("/operator?lang=en").get_data(as_text=True)
    assert "Full name" in page and "Citizen's phone" in page  # lazy form labels
    page = client.get("/appeals?lang=ru").get_data(as_text=True)
    assert "Закрыто" in page and "Передано исполнителю" in page


def test_numbers_follow_the_language(app_config):
    app = create_app(app_config)
    for lang, shown in (("ru", ("87,5", "84", "+2,5", "-3", "12,0", "50")),
                        ("en", ("87.5", "84", "+2.5", "-3", "12.0", "50"))):
        with app.test_request_context(f"/?lang={lang}"):
            assert i18n.format_number(87.5) == shown[0]
            assert i18n.format_number(84.0) == shown[1]
            assert i18n.format_number(2.5, signed=True) == shown[2]
            assert i18n.format_number(-3, signed=True) == shown[3]
            assert i18n.format_number(12, 1) == shown[4]
            assert i18n.format_number(49.6, 0) == shown[5]


def test_deadline_words_follow_the_language(app_config):
    moment = datetime(2026, 12, 31, 20, 30, tzinfo=timezone.utc)  # 23:30 in Moscow
    app = create_app({**app_config, "CRM_TIMEZONE": "Europe/Moscow"})
    deadline_time = app.jinja_env.filters["deadline_time"]
    for lang, tomorrow, other in (("ru", "23:30 завтра", "31.12.2026 23:30"),
                                  ("en", "23:30 tomorrow", "31.12.2026 23:30")):
        with app.test_request_context(f"/?lang={lang}"):
            assert deadline_time(moment, moment) == "23:30"
            assert deadline_time(moment, moment - timedelta(days=1)) == tomorrow
            assert deadline_time(moment, moment - timedelta(days=5)) == other


def test_citizen_sees_a_refused_link_explained_in_english(client):
    page = client.get("/my/link/not-a-token?lang=en").get_data(as_text=True)
    assert "The link was not accepted" in page and "The link is not valid" in page
    assert not CYRILLIC.search(page)
    page = client.get("/my/link/not-a-token?lang=ru").get_data(as_text=True)
    assert "Ссылка не принята" in page and "Ссылка недействительна" in page


# --- errors raised by the code: marked, translated where shown ------------------------------------

#: Calls that mark a message: this app's lazy ``_l`` (crm.i18n.lazy_gettext), Flask-Babel's eager
#: ``_``/``gettext`` (in a request), and ``N_`` where the error carries its values itself.
MARKERS = {"_l", "lazy_gettext", "_", "gettext", "N_"}


def _is_marker(node) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in MARKERS


#: Calls that show their text to a person as it is: the API's answer, a flash, a row refused by an import.
SHOWN_BY = {"api_error", "flash"}


def _shows_text(func) -> bool:
    if isinstance(func, ast.Name):
        return func.id in SHOWN_BY
    return (isinstance(func, ast.Attribute) and func.attr == "append"
            and isinstance(func.value, ast.Attribute) and func.value.attr == "refused")


def _unmarked_raises(source: str) -> list[tuple[int, str]]:
    """(line, text) of each Russian string literal (or f-string) in the arguments of a ``raise X(...)``,
    an ``api_error(...)`` answer, a ``flash(...)`` or an import's ``result.refused.append(...)`` that is
    not the message of a marker call, and of each marker given an f-string (an f-string's text is not a
    message id: its values go in as ``%(name)s`` keywords)."""
    found = []

    def visit(node) -> None:
        if _is_marker(node):
            if node.args and isinstance(node.args[0], ast.JoinedStr):
                found.append((node.lineno, "f-string in " + node.func.id + "(): " + ast.unparse(node.args[0])[:60]))
            for value in node.args[1:] + [k.value for k in node.keywords]:
                visit(value)
            return
        if isinstance(node, (ast.Constant, ast.JoinedStr)):
            text = node.value if isinstance(node, ast.Constant) else ast.unparse(node)
            if isinstance(text, str) and CYRILLIC.search(text):
                found.append((node.lineno, text[:60]))
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    for node in ast.walk(ast.parse(source)):
        call = node.exc if isinstance(node, ast.Raise) else node
        if (isinstance(node, ast.Raise) and isinstance(call, ast.Call)
                or isinstance(node, ast.Call) and _shows_text(node.func)):
            for arg in call.args + [k.value for k in call.keywords]:
                visit(arg)
    return found


def test_raised_errors_mark_their_russian_messages():
    """Every ``raise X("...")`` with Russian text marks it (``_l("...", name=value)``), so the message
    is extracted into the catalogues and shown in the request's language (issue 12); so does every
    message the API answers with ``api_error(...)``, every ``flash()`` and every reason an import
    refuses a row with."""
    found = {}
    for path in sorted((ROOT / "crm").rglob("*.py")):
        bare = _unmarked_raises(path.read_text(encoding="utf-8"))
        if bare:
            found[path.relative_to(ROOT).as_posix()] = bare
    total = sum(map(len, found.values()))
    assert not found, f"Russian error text outside _l() in {total} places: {({k: v[:3] for k, v in found.items()})}"


def test_the_raise_scanner_sees_bare_messages_and_accepts_marked_ones():
    assert _unmarked_raises('raise E(_l("нет «%(x)s»", x=f"{y}"), "field")') == []
    assert _unmarked_raises('raise E(409, "code", _("нет"))\nraise E("code", "English", message_ru=N_("нет"))') == []
    assert _unmarked_raises('raise E("code", "English only")') == []
    assert _unmarked_raises('raise E("нет такого", "field")') == [(1, "нет такого")]
    assert _unmarked_raises('if x:\n    raise E(f"нет {x}")') == [(2, "f'нет {x}'")]
    assert _unmarked_raises('raise E(409, "c",\n  "нет" if one else "нету")') == [(2, "нет"), (2, "нету")]
    assert _unmarked_raises('raise E("причина: " + str(x))') == [(1, "причина: ")]
    assert _unmarked_raises('raise E(_l(f"нет {x}"))') == [(1, "f-string in _l(): f'нет {x}'")]
    assert _unmarked_raises('return api_error(401, "c", "нужен токен")') == [(1, "нужен токен")]
    assert _unmarked_raises('return api_error(401, "c", translate(N_("нужен токен")))') == []
    assert _unmarked_raises('flash("Готово.", "success")') == [(1, "Готово.")]
    assert _unmarked_raises('flash(_("Готово."), "success")\nflash(str(exc), "error")') == []
    assert _unmarked_raises('result.refused.append((line, "лишние ячейки"))') == [(1, "лишние ячейки")]
    assert _unmarked_raises('result.refused.append((line, str(_l("лишние ячейки"))))') == []


def test_lazy_messages_follow_the_language_of_the_request(app_config):
    """``_l()`` is put into words when turned into text: Russian outside a request (the CLI, jobs) and in
    a Russian request, English on ``?lang=en``; its values are filled in either way, label values marked
    ``_l`` are translated too, and Jinja escapes it like any text."""
    from markupsafe import escape

    from crm.appeals.catalog import STATUSES
    from crm.appeals.services import AppealError

    exc = AppealError(i18n.lazy_gettext("нельзя перевести из «%(from_status)s» в «%(to_status)s»",
                                        from_status=i18n.lazy_gettext(STATUSES["closed"]),
                                        to_status=i18n.lazy_gettext(STATUSES["received"])), "status")
    russian = "нельзя перевести из «Закрыто» в «Принято»"
    assert str(exc) == russian and exc.args[0] == russian
    app = create_app(app_config)
    with app.test_request_context("/?lang=en"):
        assert str(exc) == "cannot move from «Closed» to «Received»"
        assert exc.args[0].russian() == russian
    with app.test_request_context("/"):
        assert str(exc) == russian
        marked = i18n.lazy_gettext("неизвестная категория «%(category)s»", category="<b>")
        assert str(escape(marked)) == "неизвестная категория «&lt;b&gt;»"


def test_catalogues_are_well_formed():
    """Every msgid has its msgstr in both catalogues: a missing one (as a merge
    once left in ru) makes `pybabel compile` drop or glue entries silently."""
    for locale in ("ru", "en"):
        assert len(_catalogue(locale)) > 0


def test_import_refusals_labels_in_messages_and_the_sign_in_prompt_follow_the_language(ctx, runner, tmp_path):
    """Text shown without being raised follows the language too: the reasons the buildings import
    refuses rows with (the extra-cells one was a bare literal), a label put inside a message (the way
    an access request's answer is delivered) and Flask-Login's sign-in prompt; outside a request (the
    CLI) and on ?lang=ru they stay Russian."""
    from types import SimpleNamespace

    from flask_babel import refresh

    from crm.buildings.services import import_csv
    from crm.consent.rights import RequestError, check_deliverable

    data = "address,entrances\nул. Ленина 5,2,лишнее\n,3\n".encode()
    with ctx.test_request_context("/?lang=en"):
        reasons = [reason for _line, reason in import_csv(data).refused]
    assert reasons == ["extra cells: more values than columns in the header", "no address given (address)"]
    path = tmp_path / "b.csv"
    path.write_bytes(data)
    output = runner("buildings", "import", str(path)).output
    assert "line 2: лишние ячейки: больше значений, чем столбцов в заголовке" in output, output

    req = SimpleNamespace(type="access", status="open", verification_method="document", export_approved_by=1,
                          delivery_method="print", verified_at=None)
    for lang, shown in (("en", "a printed document (or file) handed over in person"),
                        ("ru", "печатный документ (или файл), выданный лично")):
        with ctx.test_request_context(f"/?lang={lang}"):
            refresh()  # the test's app context (and Flask-Babel's cached locale on g) is shared
            try:
                check_deliverable(req, "self_service")
            except RequestError as exc:
                assert str(exc).endswith(": " + shown), str(exc)
            else:
                raise AssertionError("a request delivered another way was not refused")

    client = ctx.test_client()
    page = client.get("/appeals?lang=en", follow_redirects=True).get_data(as_text=True)
    assert "Sign in to continue." in page and "Войдите, чтобы продолжить." not in page
    page = client.get("/appeals?lang=ru", follow_redirects=True).get_data(as_text=True)
    assert "Войдите, чтобы продолжить." in page
