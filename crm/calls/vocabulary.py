"""The hotline's vocabulary prompt for transcription (issue 18, point 1).

Whisper can be conditioned on text it is told came before the audio (``<|startofprev|>``, the
``initial_prompt`` of the reference implementation and faster-whisper): spellings seen there are
preferred, so «жилищно-коммунального», «ГВС», an operator's name or a street of the register come
out written as the hotline writes them. The prompt is built from what the instance holds:

- the line's name (``CRM_HOTLINE_NAME``) and, for a call the PBX says an operator answered, that
  operator's name from their staff account (``оператор Анна``); for a call without one, the first
  names of the active operators;
- the topic vocabulary of the field (:data:`TOPIC_TERMS`);
- the few streets with the most buildings in the register (:func:`crm.buildings.services.street_names`,
  ``CRM_VOCABULARY_STREETS``, 3).

Chosen on dev_call_01 only (bench/transcription.py and the other shared sets judge it): the order
and the length matter more than the words (see :func:`compose`).

The instance-wide part (terms and streets) is cached in Redis for ``CRM_VOCABULARY_TTL_S``
(600 s), so a worker does not read the register for every call. ``CRM_VOCABULARY_PROMPT`` (True)
switches it off. Measured on ../shared/data/speech-ru in bench/transcription.py (``--prompt``).
Nothing of a citizen is ever put into the prompt: it names staff, streets and terms only.
"""
from __future__ import annotations

import json
import logging

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from crm import jobs, text_ru
from crm.buildings import services as buildings
from crm.db import database_missing, db
from crm.users import services as users

log = logging.getLogger(__name__)

#: The field's words (ЖКХ hotlines; ГВС/ХВС as in ПП 354), in the accusative after «Звонят про».
TOPIC_TERMS = ("ГВС", "ХВС", "стояк", "отопление", "аварийную службу", "управляющую компанию")


def compose(line_name: str, operator_names: list[str], terms=TOPIC_TERMS, streets=()) -> str:
    """The prompt text: ``"<line>, оператор <name>. Звонят про <terms>. Адреса: <streets>."`` (parts
    left out when empty). The line's name comes first: a prompt that ends with the words the call
    starts with makes Whisper skip them (measured: the greeting lost on dev_call_01), and a long
    prompt costs accuracy (15 streets: WER 0.259, 5: 0.222, 3: 0.198 on dev_call_01)."""
    parts = []
    head = line_name.strip()
    names = [n.strip() for n in operator_names if n and n.strip()]
    if names:
        head = f"{head}, оператор {', '.join(names)}" if head else f"Оператор {', '.join(names)}"
    if head:
        parts.append(head + ".")
    if terms:
        parts.append("Звонят про " + ", ".join(terms) + ".")
    if streets:
        parts.append("Адреса: " + ", ".join(streets) + ".")
    return " ".join(parts)


def _first_name(full_name: str) -> str:
    """«Анна Смирнова» → «Анна» (operators introduce themselves by first name)."""
    return full_name.split()[0] if full_name and full_name.split() else ""


def _cached(name: str, build) -> list[str]:
    """The list ``build()`` returns, cached in Redis under the instance's prefix + ``name`` for
    ``CRM_VOCABULARY_TTL_S``. Redis down: built each time (neither transcription nor masking may
    depend on the cache)."""
    cfg = current_app.config
    key = cfg["CRM_QUEUE_PREFIX"] + name
    try:
        conn = jobs.redis_connection()
        raw = conn.get(key)
        if raw is not None:
            return json.loads(raw)
    except Exception:  # Redis down: build it
        conn = None
    value = build()
    if conn is not None:
        try:
            conn.set(key, json.dumps(value, ensure_ascii=False), ex=int(cfg["CRM_VOCABULARY_TTL_S"]))
        except Exception:
            log.warning("vocabulary cache %s not written", name, exc_info=True)
    return value


def _cached_streets() -> list[str]:
    return _cached("vocabulary:streets",
                   lambda: buildings.street_names(int(current_app.config["CRM_VOCABULARY_STREETS"])))


#: At most this many of the register's streets are masked by name in transcripts (all of a city's).
MASK_STREETS_MAX = 20_000


def register_streets() -> text_ru.StreetNames:
    """Every street name of the buildings register without its type («садовая», «мира», «малый
    каретный»), prepared for masking transcripts (:func:`crm.text_ru.personal_spans`): a misheard or
    lower-case street the citizen names is masked beside a street type or a house number. The names
    are cached in Redis for ``CRM_VOCABULARY_TTL_S`` like the prompt's streets (a reader of the
    transcript page or the search does not read the register each time)."""
    names = _cached("crm:street_register", lambda: sorted(
        {street.split(" ", 1)[1].lower() for street in buildings.street_names(MASK_STREETS_MAX) if " " in street}))
    return text_ru.street_names(tuple(names))


def prompt_for(operator_id: int | None, operator_name: str | None = None) -> str | None:
    """The prompt for a call answered by the staff account ``operator_id`` (None: not known), or
    None when ``CRM_VOCABULARY_PROMPT`` is off. ``operator_name``: the answering operator's first name
    as said in the greeting, given instead of an account (``crm transcribe --operator``)."""
    cfg = current_app.config
    if not cfg["CRM_VOCABULARY_PROMPT"]:
        return None
    names = [operator_name.strip()] if operator_name and operator_name.strip() else None
    if database_missing():
        # no database here (``crm transcribe`` on a machine without the instance's, an instance not yet
        # set up): nothing to read staff or streets from, and reading would create an empty SQLite file
        log.info("vocabulary prompt without staff names and streets: no database")
        return compose(cfg["CRM_HOTLINE_NAME"], names or [], TOPIC_TERMS, ())
    try:
        if names is None:
            user = users.get(operator_id)
            if user is not None:
                names = [_first_name(user.full_name)]
            else:
                names = sorted({_first_name(u.full_name) for u in users.active_with_roles("operator")} - {""})[:8]
        streets = _cached_streets()
    except SQLAlchemyError:
        # no database (``crm transcribe`` on a machine without one, an instance not yet set up): the
        # line's name, the terms and a name given by hand still help; staff and streets are left out
        db.session.rollback()
        log.warning("vocabulary prompt without staff names and streets: the database cannot be read")
        names, streets = names or [], []
    return compose(cfg["CRM_HOTLINE_NAME"], names, TOPIC_TERMS, streets)
