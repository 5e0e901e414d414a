"""The texts of citizen notifications, in one place, per event and channel (Russian).

A template is looked up by ``"<event>:<channel>"``, most specific first: ``status:resolved:sms``,
then ``status:sms``. E-mail templates are ``(subject, body)``; SMS templates are one text (keep them
short: 70 Cyrillic characters make one SMS segment, a longer text is sent as several). Placeholders
(``str.format``): ``{number}`` the appeal number, ``{status}`` the new status in words,
``{comment}`` the citizen-facing comment, ``{original_number}`` the original of a duplicate,
``{text}`` an incident's text. ``{comment_part}`` / ``{comment_block}`` are the comment with its
lead-in («Комментарий: …»), empty when there is none.

The deployment may override any of them in ``CRM_NOTIFY_TEMPLATES`` (instance/config.py), e.g.
``{"registered:sms": "УК «Пример»: заявка № {number} принята."}``; an e-mail override is a
two-item list ``[subject, body]``. :func:`render` checks an override's placeholders at use and
falls back to the built-in text (logged) when one is unknown, so a typo never stops notifications.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)
SIGNATURE = "Горячая линия ЖКХ"

TEMPLATES: dict[str, str | tuple[str, str]] = {
    # the appeal number, sent at registration
    "registered:sms": SIGNATURE + ": обращение зарегистрировано, № {number}. Сохраните номер для справок.",
    "registered:email": ("Обращение № {number} зарегистрировано",
                         "Здравствуйте!\n\nВаше обращение на горячую линию ЖКХ зарегистрировано под номером {number}.\n"
                         "Назовите этот номер, если будете звонить по нему ещё раз. Мы сообщим, когда статус "
                         "обращения изменится.\n\n— " + SIGNATURE),
    # status changes, with the citizen-facing comment
    "status:sms": SIGNATURE + ": заявка № {number} — {status}.{comment_part}",
    "status:email": ("Заявка № {number}: {status}",
                     "Здравствуйте!\n\nСтатус вашей заявки № {number}: {status}.{comment_block}\n\n— " + SIGNATURE),
    "status:resolved:sms": SIGNATURE + ": работы по заявке № {number} выполнены.{comment_part}",
    "status:resolved:email": ("Заявка № {number}: работы выполнены",
                              "Здравствуйте!\n\nРаботы по вашей заявке № {number} выполнены.{comment_block}\n\n"
                              "Если проблема осталась, позвоните на горячую линию и назовите номер заявки.\n\n— "
                              + SIGNATURE),
    "status:closed:sms": SIGNATURE + ": заявка № {number} закрыта.{comment_part}",
    "status:rejected:sms": SIGNATURE + ": заявка № {number} отклонена.{comment_part}",
    "status:duplicate:sms": (SIGNATURE + ": заявка № {number} объединена с заявкой № {original_number} по той же "
                             "проблеме; работы ведутся по ней."),
    "status:duplicate:email": ("Заявка № {number} объединена с заявкой № {original_number}",
                               "Здравствуйте!\n\nВаша заявка № {number} объединена с заявкой № {original_number} по "
                               "той же проблеме; работы ведутся по ней.{comment_block}\n\n— " + SIGNATURE),
    # an outage or emergency: the text operators read to callers
    "incident:sms": SIGNATURE + ": {text}",
    "incident:email": ("Отключение или авария в вашем доме",
                       "Здравствуйте!\n\n{text}\n\n— " + SIGNATURE),
}

EVENTS = ("registered", "status", "incident")
#: The placeholders a template may use.
PLACEHOLDERS = ("number", "status", "comment", "comment_part", "comment_block", "original_number", "text")


@dataclass(frozen=True)
class Rendered:
    """A message ready to queue: ``text`` (the whole message), ``shown`` (the same with the comment
    replaced by ``***``, what the outbox keeps in clear), ``subject`` (e-mail; None for SMS)."""

    text: str
    shown: str
    subject: str | None


def _lookup(key: str, overrides: dict | None):
    if overrides and key in overrides:
        return overrides[key], True
    return TEMPLATES.get(key), False


def template_for(event: str, channel: str, variant: str | None = None, overrides: dict | None = None):
    """``(template, overridden)`` for ``event`` on ``channel`` (``variant``: a status code), most
    specific first. Raises KeyError when none exists."""
    keys = ([f"{event}:{variant}:{channel}"] if variant else []) + [f"{event}:{channel}"]
    for key in keys:
        found, overridden = _lookup(key, overrides)
        if found is not None:
            return found, overridden, key
    raise KeyError(f"no template for {event}:{channel}")


def _fill(template, values: dict) -> tuple[str, str | None]:
    if isinstance(template, (tuple, list)):
        subject, body = template
        return body.format(**values), subject.format(**values)
    return template.format(**values), None


def render(event: str, channel: str, *, variant: str | None = None, overrides: dict | None = None,
           **values) -> Rendered:
    """The message for ``event`` on ``channel`` with ``values`` (``number``, ``status``, ``comment``,
    ``original_number``, ``text``; missing ones are empty). Raises KeyError for an unknown event or
    channel."""
    comment = (values.get("comment") or "").strip()
    base = {"number": "", "status": "", "original_number": "", "text": "", **values}

    def filled(comment_text: str) -> dict:
        return {**base, "comment": comment_text,
                "comment_part": f" Комментарий: {comment_text}" if comment_text else "",
                "comment_block": f"\n\nКомментарий: {comment_text}" if comment_text else ""}

    template, overridden, key = template_for(event, channel, variant, overrides)
    try:
        text, subject = _fill(template, filled(comment))
        shown, _ = _fill(template, filled("***" if comment else ""))
    except (KeyError, IndexError, ValueError):
        if not overridden:
            raise
        log.warning("template override %s has an unknown placeholder: the built-in text is used", key)
        return render(event, channel, variant=variant, overrides=None, **values)
    return Rendered(text, shown, subject)
