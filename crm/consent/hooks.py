"""The consent package's answers to hooks (:mod:`crm.hooks`), subscribed by the factory."""
from __future__ import annotations

import logging

from crm import hooks
from crm.citizens import services as citizens
from crm.consent import sms
from crm.security import audit

log = logging.getLogger(__name__)

#: The SMS to the number a rectification replaced. It names neither number (the old one may now be
#: somebody else's) and tells the citizen what to do if they did not ask for the change.
PHONE_CHANGED_TEXT = ("Горячая линия ЖКХ: по вашему обращению номер телефона в ваших данных заменён на другой. "
                      "Если вы этого не просили, позвоните на горячую линию.")


def _rectified(citizen_id: str, fields: list[str], old_phone: str | None = None, actor=None, **_: object) -> None:
    """``citizen.rectified``: when the phone changed, tell the old number (152-ФЗ ст. 21 ч. 2: the
    subject is told of the correction). A staff member who put their own number in the card — to
    receive the citizen's self-service codes and links — cannot do it unnoticed: the citizen's own
    phone gets this SMS. Logged as ``sms.send`` (kind ``phone_changed``); a gateway failure leaves the
    outbox row ``failed`` and does not undo the correction, already committed."""
    if not old_phone or "phone" not in fields:
        return
    try:
        sms.send(citizens.get(citizen_id), purpose=audit.REPORT_PURPOSE, kind="phone_changed",
                 body=PHONE_CHANGED_TEXT, to=old_phone, actor=actor)
    except Exception:  # noqa: BLE001 - the gateway's error is logged by sms.send (the id only)
        log.warning("the old number of citizen %s was not told of the rectification", citizen_id)


def register() -> None:
    """Subscribe consent's reactions."""
    hooks.subscribe("citizen.rectified", _rectified)
