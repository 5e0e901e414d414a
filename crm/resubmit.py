"""A refused form keeps what was typed (issue 17 point 6).

Three refusals used to throw the typing away: an expired CSRF token (a bare 400), a session that ended
while the form was open (a redirect to the sign-in page), and an upload larger than
``MAX_CONTENT_LENGTH`` (a bare 413). :func:`render` answers each with the page ``resubmit.html``: the
reason in Russian and a form to the same address carrying every typed field (editable, a fresh CSRF
token), so the operator checks and sends it again. A file cannot be kept by a browser page: the form
asks for it again (smaller, for the 413).

For the 413 the body was not read (it is over the limit): :func:`leading_fields` reads at most
:data:`PEEK_BYTES` of it and keeps the text fields sent before the first file — the appeal forms put
their file input last.
"""
from __future__ import annotations

from flask import render_template, request
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

#: How much of an over-the-limit body is read to recover the text fields typed before the file.
PEEK_BYTES = 1024 * 1024
#: Fields never shown back (the token is made anew).
SKIPPED = {"csrf_token"}


def leading_fields(environ) -> tuple[list[tuple[str, str]], list[str]]:
    """``(fields, file_names)`` of a multipart body from its first :data:`PEEK_BYTES`: the text fields
    before the first file part, and the names of the file inputs seen. Empty when the body is not
    multipart or was already read."""
    mimetype, options = parse_options_header(environ.get("CONTENT_TYPE", ""))
    if mimetype != "multipart/form-data" or "boundary" not in options:
        return [], []
    try:
        head = environ["wsgi.input"].read(PEEK_BYTES)
    except Exception:  # noqa: BLE001 — a closed or consumed stream: nothing to recover
        return [], []
    decoder = MultipartDecoder(options["boundary"].encode(), max_form_memory_size=PEEK_BYTES)
    decoder.receive_data(head)
    decoder.receive_data(None)
    fields, files, name, chunks = [], [], None, []
    try:
        event = decoder.next_event()
        while not isinstance(event, (Epilogue, NeedData)):
            if isinstance(event, File):
                files.append(event.name)
                break  # the file's bytes: nothing after them is recovered
            if isinstance(event, Field):
                name, chunks = event.name, []
            elif isinstance(event, Data) and name is not None:
                chunks.append(event.data)
                if not event.more_data:
                    fields.append((name, b"".join(chunks).decode("utf-8", "replace")))
                    name = None
            event = decoder.next_event()
    except ValueError:  # a truncated or malformed part: keep what was decoded
        pass
    return fields, files


def typed_fields() -> list[tuple[str, str]]:
    """The request's form fields (all values of repeated names), without :data:`SKIPPED`."""
    return [(k, v) for k, v in request.form.items(multi=True) if k not in SKIPPED]


def render(message: str, status: int, fields: list[tuple[str, str]] | None = None,
           file_names: list[str] | None = None, sign_in: bool = False):
    """The ``resubmit.html`` answer: ``message``, and a form to the request's own URL with ``fields``
    (default: the request's form) and a file input per name in ``file_names``."""
    fields = typed_fields() if fields is None else [(k, v) for k, v in fields if k not in SKIPPED]
    action = request.full_path.rstrip("?") if request.query_string else request.path
    return render_template("resubmit.html", message=message, fields=fields, file_names=file_names or [],
                           action=action, sign_in=sign_in), status
