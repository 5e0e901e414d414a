"""Languages of the interface (Flask-Babel).

The UI is written in Russian: the Russian text is the message id, so the Russian catalogue
(``crm/translations/ru``) is the default and needs no translations, and the English catalogue
(``crm/translations/en``) translates each message. Dates and times are formatted by Flask-Babel in
``CRM_TIMEZONE`` (``BABEL_DEFAULT_TIMEZONE`` follows it).

The language is Russian unless a person chose another one: ``?lang=en`` (or ``?lang=ru``) on any
page stores the choice in the session. A browser's ``Accept-Language`` is not followed, because a
hotline's staff work in Russian whatever their browser was installed with.

Catalogues: ``make translations`` extracts the messages (``babel.cfg``, plus ``_l``) into
``crm/translations/messages.pot`` and updates both catalogues; ``make install`` compiles them.

Marking text (the Russian stays the message id; the Russian output does not change):

- templates: ``{{ _("Заявки") }}``, with values ``{{ _("Звонок %(at)s", at=call.created_at|localtime) }}``
  (a literal ``%`` is written ``%%``); tests/core/test_i18n.py fails on Russian text outside ``_()``;
- views: ``flash(_("Согласие отозвано."))`` (``from flask_babel import gettext as _``);
- form classes (built at import): ``StringField(_l("ФИО"))`` (``lazy_gettext as _l``);
- errors raised by services (shown later, by the error handlers, ``flash()``, the CLI):
  ``raise AppealError(_l("неизвестная категория «%(code)s»", code=code), "category")`` with
  ``from crm.i18n import lazy_gettext as _l`` (this module's, not Flask-Babel's: Russian outside a
  request, as :func:`translate`); the message becomes text — in the request's language — only when
  the edge calls ``str(exc)``. tests/core/test_i18n.py fails on a ``raise X("...")`` with Russian
  text outside ``_l()``;
- ``{code: label}`` catalogues: values marked ``N_("...")``, handed to templates as ``Labels(dict)``
  (translated when read), while the API and the services keep the plain dict;
- numbers: ``{{ score|number }}`` (``87,5`` / ``87.5``), dates: ``{{ at|localtime }}``.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from babel.numbers import format_decimal as babel_format_decimal
from flask import Flask, current_app, has_request_context, request, session
from flask_babel import format_datetime, format_decimal, get_locale, gettext, refresh

from crm.extensions import babel

LOCALES = ("ru", "en")


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it now (it is translated where shown,
    with ``gettext(message)``)."""
    return message


def translate(message: str, /, **values) -> str:
    """``message`` (a Russian msgid, usually marked with :func:`N_`) in the request's language, with
    ``%(name)s`` values filled in; outside a request (jobs, the CLI, documents built by workers) the
    Russian text itself, so a label never depends on whichever request ran last."""
    if has_request_context():
        return gettext(message, **values)
    return message % values if values else message


class LazyText:
    """A message id (Russian) with its ``%(name)s`` values, put into words only when turned into text:
    ``str(text)`` is :func:`translate` (the request's language; Russian outside a request). Made by
    :func:`lazy_gettext`. Unlike Flask-Babel's ``LazyString`` it has no ``__html__``, so Jinja escapes
    it (its values may be what a user typed), and it is never cached on ``g``. Not JSON-serialisable:
    ``str()`` it first."""

    __slots__ = ("message", "values")

    def __init__(self, message: str, values: dict | None = None):
        self.message = message
        self.values = values or {}

    def __str__(self) -> str:
        return translate(self.message, **self.values)

    def russian(self) -> str:
        """The Russian text whatever the request's language (for what is kept as data)."""
        values = {k: v.russian() if isinstance(v, LazyText) else v for k, v in self.values.items()}
        return self.message % values if values else self.message

    def __repr__(self) -> str:
        return f"lazy_gettext({self.message!r})"

    def __eq__(self, other) -> bool:
        if isinstance(other, (str, LazyText)):
            return str(self) == str(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self))

    def __contains__(self, item: str) -> bool:
        return item in str(self)

    def __add__(self, other: str) -> str:
        return str(self) + other

    def __radd__(self, other: str) -> str:
        return other + str(self)


def lazy_gettext(message: str, /, **values) -> LazyText:
    """``message`` (a Russian msgid, with ``%(name)s`` placeholders for ``values``; a literal ``%``
    is ``%%`` when there are values) translated when it is turned into text, not now: for errors a
    service raises and an edge shows. Import it as ``_l`` (``make translations`` extracts ``_l``)."""
    return LazyText(message, values)


class Labels(Mapping):
    """A read-only view of a ``{code: Russian label}`` dict (labels marked with ``N_``) whose values
    are translated into the request's language when read; templates get these, while the API and
    the services keep the plain dict. ``Labels(STATUSES)["closed"]`` -> ``"Закрыто"`` / ``"Closed"``."""

    def __init__(self, labels: Mapping[str, str]):
        self._labels = labels

    def __getitem__(self, code: str) -> str:
        return gettext(self._labels[code])

    def __iter__(self):
        return iter(self._labels)

    def __len__(self) -> int:
        return len(self._labels)


def select_locale() -> str:
    """The locale of this request: a valid ``?lang=`` (remembered in the session), else the one
    remembered, else ``BABEL_DEFAULT_LOCALE`` (``ru``); outside a request (commands, jobs) the default."""
    if not has_request_context():
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    wanted = request.args.get("lang")
    if wanted in LOCALES:
        session["lang"] = wanted
        return wanted
    remembered = session.get("lang")
    if remembered in LOCALES:
        return remembered
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def format_local(value, seconds: bool = False) -> str:
    """A UTC datetime (or ISO string) as ``dd.MM.yyyy HH:mm[:ss]`` in ``CRM_TIMEZONE``; ``—`` for
    nothing. Template filters ``localtime`` and (its old name) ``moscow``."""
    if not value:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return format_datetime(value, "dd.MM.yyyy HH:mm:ss" if seconds else "dd.MM.yyyy HH:mm")


def format_number(value, digits: int | None = None, signed: bool = False, locale: str | None = None) -> str:
    """A number as the request's language writes it (``87,5`` in Russian, ``87.5`` in English):
    ``digits`` fixes the decimals (``None``: up to three, no trailing zeros), ``signed`` adds ``+``
    to positive values; ``locale`` (e.g. ``"ru"``) writes it in that language instead, with no app or
    request needed (a Russian text made by a job: the automatic QA checks' details, «на 17,8 с»).
    Template filter ``number`` (``{{ score|number }}``, ``{{ x|number(1) }}``)."""
    pattern = "#,##0" + ("." + "0" * digits if digits else "" if digits == 0 else ".###")
    if signed:
        pattern = f"+{pattern};-{pattern}"
    if locale is not None:
        return babel_format_decimal(value, format=pattern, locale=locale)
    return format_decimal(value, format=pattern)


def init_app(app: Flask) -> None:
    """Flask-Babel with the locale selector; the Babel time zone follows ``CRM_TIMEZONE``; the
    ``localtime``/``moscow`` and ``number`` filters."""
    app.config["BABEL_DEFAULT_TIMEZONE"] = app.config["CRM_TIMEZONE"]
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    babel.init_app(app, locale_selector=select_locale)
    # Flask-Babel caches the locale on ``g``; requests that share an application context (the test
    # client inside a test's app context) would otherwise keep the first request's language
    app.before_request(refresh)
    app.add_template_filter(format_local, "localtime")
    app.add_template_filter(format_local, "moscow")
    app.add_template_filter(format_number, "number")
    app.add_template_global(lambda: str(get_locale() or app.config["BABEL_DEFAULT_LOCALE"]), "locale_code")
