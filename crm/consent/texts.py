"""Consent texts by version. The hash of the exact text is stored with each consent event, so the
DPO can show which words the citizen agreed to. A new wording is a new version; old ones stay."""
from __future__ import annotations

import hashlib

PURPOSES = [
    # code, name, legal basis, requires consent, data categories, retention days
    ("appeal_processing", "Рассмотрение обращения", "152-ФЗ ст. 6 ч. 1 п. 5 (договор управления) и п. 2 "
     "(59-ФЗ, ЖК РФ ст. 161, ПП РФ № 416)", False, "ФИО, телефон, адрес, суть обращения", 1825),
    ("sms_notifications", "SMS-уведомления о статусе заявки", "152-ФЗ ст. 6 ч. 1 п. 1 (согласие)", True,
     "телефон", 365),
    ("csat_survey", "Опрос удовлетворённости", "152-ФЗ ст. 6 ч. 1 п. 1 (согласие)", True, "телефон, оценка", 365),
    ("call_recording_qa", "Запись звонка для контроля качества", "152-ФЗ ст. 6 ч. 1 п. 1 (согласие)", True,
     "голос, расшифровка", 365),
]

TEXTS = {
    ("sms_notifications", "sms-2026-1"): "Я согласен(на) получать SMS-уведомления о ходе рассмотрения моей "
    "заявки на указанный номер телефона. Согласие действует до его отзыва.",
    ("csat_survey", "csat-2026-1"): "Я согласен(на) участвовать в опросе о качестве обслуживания.",
    ("call_recording_qa", "rec-2026-1"): "Я согласен(на) на запись разговора для контроля качества "
    "обслуживания. Согласие можно отозвать в любой момент.",
    ("appeal_processing", "appeal-2026-1"): "Ваши данные обрабатываются для рассмотрения обращения на основании "
    "закона и договора управления.",
}

DEFAULT_VERSION = {purpose: version for (purpose, version) in TEXTS}


def text_hash(purpose: str, version: str) -> str:
    """SHA-256 hex of the exact text; raises ``KeyError`` for an unknown version."""
    return hashlib.sha256(TEXTS[(purpose, version)].encode("utf-8")).hexdigest()
