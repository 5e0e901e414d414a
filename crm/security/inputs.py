"""Input every page and endpoint refuses before a view sees it (issue 17 point 6, "no input breaks a
page"), because the layers below cannot take it and used to answer 500:

- a NUL character (``\\x00``, ``%00``, ``\\u0000`` in JSON) anywhere in the path, the query string, a form
  field or a JSON body (a body over :data:`EARLY_JSON_BYTES` when parsed: ``invalid_json``): PostgreSQL's text types cannot hold it ("A string literal cannot contain NUL
  (0x00) characters"). No Russian address, name or comment contains one, so the request is refused 400
  with a message, rather than the character silently dropped. Uploaded files are not inspected (audio is
  binary);
- a JSON body nested deeper than :data:`MAX_JSON_DEPTH` levels: Python's parser raises ``RecursionError``
  (not ``ValueError``) on a body nested ~1,000 deep, which escaped every handler. :class:`JsonProvider`
  turns both into ``ValueError``, which ``request.get_json`` answers 400 like any malformed JSON.

Dates typed into forms are held to crm.timeutil.MIN_YEAR … MAX_YEAR by :func:`year_in_range`.

:func:`init_app` installs the first two.
"""
from __future__ import annotations

import json

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider

from crm.errors import InvalidInput
from crm.i18n import lazy_gettext as _l
from crm.timeutil import out_of_range

#: Deepest nesting of arrays and objects a JSON body may have (the API's deepest schema has 3).
MAX_JSON_DEPTH = 32


#: JSON bodies up to this size are checked for NUL before the view (the smallest body limit a view sets
#: itself is 16 KB: a larger body is not read early, so the view's own limit still answers 413); larger
#: ones are checked when parsed (:class:`JsonProvider`).
EARLY_JSON_BYTES = 16 * 1024


def _problem(value, limit: int) -> str | None:
    """Why ``value`` (parsed JSON) is refused: nested deeper than ``limit``, or a NUL in a string or a
    key; None when fine. Iterative: no recursion."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return "NUL character in a string"
        elif isinstance(node, (dict, list)):
            if depth > limit:
                return f"JSON nested deeper than {limit} levels"
            if isinstance(node, dict):
                stack.extend((k, depth) for k in node)
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return None


class JsonProvider(DefaultJSONProvider):
    """Flask's JSON provider whose ``loads`` raises ``ValueError`` (a 400 in ``request.get_json``) for a
    body nested deeper than :data:`MAX_JSON_DEPTH` or too deep for the parser itself, or carrying a NUL."""

    def loads(self, s, **kwargs):
        try:
            value = json.loads(s, **kwargs)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
        if (problem := _problem(value, MAX_JSON_DEPTH)) is not None:
            raise ValueError(problem)
        return value


def _has_nul(values) -> bool:
    return any("\x00" in v for v in values if isinstance(v, str))


def refuse_nul() -> None:
    """``before_request``: raise :class:`crm.errors.InvalidInput` (400 ``invalid_characters``) when the
    path, query string, a form field (not a file) or a JSON body carries a NUL character."""
    found = "\x00" in request.path or _has_nul(request.args.keys()) or _has_nul(request.args.values())
    if not found and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        found = _has_nul(request.form.keys()) or _has_nul(request.form.values())
    if not found and request.is_json and (request.content_length or 0) <= EARLY_JSON_BYTES:
        raw = request.get_data(cache=True)
        found = b"\\u0000" in raw or b"\x00" in raw
    if found:
        raise InvalidInput(_l("запрос содержит недопустимый символ (NUL, код 0): уберите его и повторите"),
                           code="invalid_characters")


def year_in_range(form, field) -> None:
    """WTForms validator for a ``DateField`` / ``DateTimeLocalField``: years crm.timeutil.MIN_YEAR …
    MAX_YEAR (year 1 overflowed the conversion to UTC: a 500)."""
    from wtforms.validators import ValidationError

    if field.data is not None and (err := out_of_range(field.data)) is not None:
        raise ValidationError(err.message)


def init_app(app: Flask) -> None:
    """Install :class:`JsonProvider` and :func:`refuse_nul` on ``app``."""
    app.json_provider_class = JsonProvider
    app.json = JsonProvider(app)
    app.before_request(refuse_nul)
