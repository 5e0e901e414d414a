"""Phone normalisation to E.164 with ``phonenumbers``.

``phonenumbers`` is lenient (pitfalls.md): ``112`` or ``3456789`` parse to "numbers". We accept only
valid Russian numbers (+7, region RU) of fixed-line, mobile or either type; every usual spelling —
``8 912 345-67-89``, ``+7 (912) 345 67 89``, ``89123456789``, ``9123456789`` — gives ``+79123456789``.
"""
from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from crm.i18n import lazy_gettext as _l

_OK_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


class InvalidPhone(ValueError):
    """The value is not a usable Russian phone number; the message is Russian, for the user."""


def normalise_phone(raw: str) -> str:
    """``raw`` as E.164 (``+7XXXXXXXXXX``). Raises :class:`InvalidPhone`."""
    if raw is None or not str(raw).strip():
        raise InvalidPhone(_l("укажите номер телефона"))
    text = str(raw).strip()
    digits = re.sub(r"\D", "", text)
    if not re.fullmatch(r"[\d\s()+\-.]+", text):
        raise InvalidPhone(_l("«%(text)s» — не номер телефона", text=text[:40]))
    if len(digits) < 10:
        raise InvalidPhone(_l("«%(text)s» — слишком короткий номер: нужен код и 7 цифр номера (10 цифр после +7)",
                              text=text[:40]))
    if len(digits) == 10 and not text.startswith("+"):
        text = "+7" + digits
    elif len(digits) == 11 and digits[0] == "8" and not text.startswith("+"):
        text = "+7" + digits[1:]
    try:
        number = phonenumbers.parse(text, "RU")
    except NumberParseException:
        raise InvalidPhone(_l("«%(text)s» — не номер телефона", text=text[:40])) from None
    if number.country_code != 7 or phonenumbers.region_code_for_number(number) != "RU":
        raise InvalidPhone(_l("принимаются только российские номера (+7)"))
    if not phonenumbers.is_valid_number(number) or phonenumbers.number_type(number) not in _OK_TYPES:
        raise InvalidPhone(_l("номер «%(raw)s» не существует в российском плане нумерации", raw=raw))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mask_phone(e164: str) -> str:
    """``+79123456789`` → ``+7 912 ***-**-89`` for operators before they reveal it."""
    if not e164 or len(e164) < 12:
        return "***"
    return f"{e164[:2]} {e164[2:5]} ***-**-{e164[-2:]}"


def format_phone(e164: str) -> str:
    """Display form ``+7 912 345-67-89``."""
    try:
        return phonenumbers.format_number(phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    except NumberParseException:
        return e164
