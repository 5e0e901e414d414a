"""The register's built-in purposes and the consent texts by version.

A consent text version is immutable: a new wording is a new version, old ones stay so the DPO can
show which words a citizen agreed to. Since version ``*-2026-2`` each text is a structured record
of the items a written consent must contain (152-ФЗ ст. 9 ч. 4): the controller (оператор) and its
address (п. 2), the purpose (п. 4), the list of data (п. 5), the processor acting on the
controller's instruction (п. 6), the actions and methods of processing (п. 7), the term and how to
withdraw (п. 8). The subject (п. 1) is the citizen the event belongs to; the signature (п. 9) is the
event's evidence (the moment in the call recording, the paper scan, the web session).

The text the citizen hears or reads is :func:`render` of a version with the controller's name and
address at that moment (configuration ``CRM_CONTROLLER_NAME`` / ``CRM_CONTROLLER_ADDRESS``); the
event stores both and the SHA-256 of the rendered text (:func:`text_hash`), so the exact words can
be re-rendered and checked years later even if the organisation's name changes.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

# code, name, legal basis, requires consent, data categories, retention days (other modules unpack
# the first two and ignore the rest: keep the order, add nothing in the middle)
PURPOSES = [
    ("appeal_processing", "Рассмотрение обращения", "152-ФЗ ст. 6 ч. 1 п. 5 (договор управления) и п. 2 "
     "(59-ФЗ, ЖК РФ ст. 161, ПП РФ № 416)", False, "ФИО, телефон, адрес, суть обращения", 1825),
    ("sms_notifications", "SMS-уведомления о статусе заявки", "152-ФЗ ст. 6 ч. 1 п. 1 (согласие)", True,
     "телефон", 365),
    ("email_notifications", "Уведомления по электронной почте о статусе заявки", "152-ФЗ ст. 6 ч. 1 п. 1 (согласие)",
     True, "адрес электронной почты", 365),
    ("csat_survey", "Опрос удовлетворённости", "152-ФЗ ст. 6 ч. 1 п. 1 (согласие)", True, "телефон, оценка", 365),
    ("call_recording_qa", "Запись звонка для контроля качества", "152-ФЗ ст. 6 ч. 1 п. 1 (согласие)", True,
     "голос, расшифровка", 365),
]

_ACTIONS = ("сбор, запись, систематизация, накопление, хранение, уточнение, извлечение, использование, "
            "передача (предоставление, доступ), блокирование, удаление, уничтожение")
_SUBJECTS = "заявители: граждане, обратившиеся на горячую линию (собственники и наниматели помещений, их представители)"
_MIXED = "смешанная обработка (с использованием средств автоматизации и без), с передачей по внутренней сети"

#: The register's columns beyond :data:`PURPOSES`, filled in by ``ensure_purposes`` where empty.
PURPOSE_DETAILS = {
    "appeal_processing": {
        "subjects": _SUBJECTS, "actions": _ACTIONS, "processing_method": _MIXED,
        "recipients": "исполнители заявок (аварийно-диспетчерская служба, ресурсоснабжающие и подрядные "
                      "организации) — в объёме, нужном для исполнения заявки; органы власти — по запросу в "
                      "случаях, предусмотренных законом",
        "retention_basis": "5 лет после последнего обращения заявителя (срок хранения обращений граждан, "
                           "перечень типовых архивных документов, Приказ Росархива от 20.12.2019 № 236); затем "
                           "уничтожение (152-ФЗ ст. 5 ч. 7, ст. 21 ч. 4)",
        "retention_action": "erase"},
    "sms_notifications": {
        "subjects": _SUBJECTS,
        "actions": "сбор, запись, хранение, использование, передача оператору связи для доставки SMS, удаление, "
                   "уничтожение",
        "processing_method": "автоматизированная обработка",
        "recipients": "оператор связи / SMS-агрегатор, действующий по поручению оператора (152-ФЗ ст. 6 ч. 3)",
        "retention_basis": "1 год с даты отправки сообщения или до отзыва согласия; после отзыва — уничтожение "
                           "в течение 30 дней (152-ФЗ ст. 21 ч. 5)",
        "retention_action": "deidentify"},
    "email_notifications": {
        "subjects": _SUBJECTS,
        "actions": "сбор, запись, хранение, использование, передача почтовому серверу для доставки писем, удаление, "
                   "уничтожение",
        "processing_method": "автоматизированная обработка",
        "recipients": "почтовый сервер (SMTP), через который оператор отправляет письма",
        "retention_basis": "1 год с даты отправки письма или до отзыва согласия; после отзыва — уничтожение "
                           "в течение 30 дней (152-ФЗ ст. 21 ч. 5)",
        "retention_action": "deidentify"},
    "csat_survey": {
        "subjects": _SUBJECTS,
        "actions": "сбор, запись, хранение, использование (обобщение оценок), удаление, уничтожение",
        "processing_method": "автоматизированная обработка",
        "recipients": "оператор связи / SMS-агрегатор, действующий по поручению оператора (152-ФЗ ст. 6 ч. 3)",
        "retention_basis": "1 год с даты опроса или до отзыва согласия; после отзыва — уничтожение в течение "
                           "30 дней (152-ФЗ ст. 21 ч. 5); обезличенные оценки хранятся для статистики",
        "retention_action": "deidentify"},
    "call_recording_qa": {
        "subjects": _SUBJECTS + "; работники горячей линии",
        "actions": "запись, хранение, расшифровка речи, прослушивание и оценка качества обслуживания, удаление, "
                   "уничтожение",
        "processing_method": _MIXED,
        "recipients": "третьим лицам не передаются",
        "retention_basis": "1 год с даты звонка или до отзыва согласия; после отзыва — исключение из выборки "
                           "контроля качества сразу и уничтожение в течение 30 дней (152-ФЗ ст. 21 ч. 5)",
        "retention_action": "deidentify"},
}

WITHDRAWAL_RU = ("Согласие можно отозвать в любой момент: сообщив оператору горячей линии по телефону, на странице "
                 "управления согласиями (по ссылке или коду из SMS) либо письменным заявлением по адресу оператора. "
                 "Отзыв не прекращает рассмотрение обращения.")


@dataclass(frozen=True)
class ConsentText:
    """One version of a consent text. ``items`` holds the ст. 9 ч. 4 items (``purpose``, ``data``,
    ``processor``, ``actions``, ``methods``, ``term``, ``withdrawal``); a legacy version has only
    ``body``. ``term_days``: how long the consent lasts (None: until withdrawn)."""

    purpose: str
    version: str
    body: str = ""
    items: dict = field(default_factory=dict)
    term_days: int | None = None

    @property
    def complete(self) -> bool:
        """True when every item of ст. 9 ч. 4 is in the text (the controller is added at rendering)."""
        return all(self.items.get(k) for k in REQUIRED_ITEMS)


REQUIRED_ITEMS = ("purpose", "data", "processor", "actions", "methods", "term", "withdrawal")
ITEM_LABELS = {"controller": "Оператор и его адрес (п. 2)", "purpose": "Цель обработки (п. 4)",
               "data": "Перечень персональных данных (п. 5)",
               "processor": "Лицо, обрабатывающее данные по поручению оператора (п. 6)",
               "actions": "Действия с данными (п. 7)", "methods": "Способы обработки (п. 7)",
               "term": "Срок действия согласия (п. 8)", "withdrawal": "Способ отзыва (п. 8)"}


def _structured(code: str, version: str, term_days: int | None, **items) -> ConsentText:
    """A structured version; ``items`` as in :class:`ConsentText` (``purpose`` is the purpose's wording)."""
    return ConsentText(code, version, items={"withdrawal": WITHDRAWAL_RU, **items}, term_days=term_days)


VERSIONS: list[ConsentText] = [
    # 2026-1: the first wordings, kept for consents given with them (they lack the ст. 9 ч. 4 items)
    ConsentText("sms_notifications", "sms-2026-1", "Я согласен(на) получать SMS-уведомления о ходе рассмотрения "
                "моей заявки на указанный номер телефона. Согласие действует до его отзыва."),
    ConsentText("csat_survey", "csat-2026-1", "Я согласен(на) участвовать в опросе о качестве обслуживания."),
    ConsentText("call_recording_qa", "rec-2026-1", "Я согласен(на) на запись разговора для контроля качества "
                "обслуживания. Согласие можно отозвать в любой момент."),
    ConsentText("appeal_processing", "appeal-2026-1", "Ваши данные обрабатываются для рассмотрения обращения на "
                "основании закона и договора управления."),
    # 2026-2: structured, every item of ст. 9 ч. 4
    _structured("sms_notifications", "sms-2026-2", 365,
                purpose="информирование меня по SMS о ходе рассмотрения моих обращений (заявок)",
                data="номер телефона; номер, тематика и статус обращения",
                processor="оператор связи / SMS-агрегатор, доставляющий сообщения по поручению оператора",
                actions=PURPOSE_DETAILS["sms_notifications"]["actions"],
                methods="автоматизированная обработка",
                term="1 год с даты получения согласия или до его отзыва"),
    _structured("email_notifications", "email-2026-2", 365,
                purpose="информирование меня по электронной почте о регистрации и ходе рассмотрения моих обращений "
                        "(заявок), об авариях и отключениях в моём доме",
                data="адрес электронной почты; номер, тематика и статус обращения; комментарий для заявителя",
                processor="не привлекается",
                actions=PURPOSE_DETAILS["email_notifications"]["actions"],
                methods="автоматизированная обработка",
                term="1 год с даты получения согласия или до его отзыва"),
    _structured("csat_survey", "csat-2026-2", 365,
                purpose="опрос о качестве обслуживания на горячей линии после закрытия моего обращения",
                data="номер телефона; номер обращения; моя оценка и комментарий",
                processor="оператор связи / SMS-агрегатор, доставляющий сообщения по поручению оператора",
                actions=PURPOSE_DETAILS["csat_survey"]["actions"],
                methods="автоматизированная обработка",
                term="1 год с даты получения согласия или до его отзыва"),
    _structured("call_recording_qa", "rec-2026-2", 365,
                purpose="запись телефонного разговора с горячей линией и её использование для контроля качества "
                        "обслуживания",
                data="запись голоса, расшифровка разговора, номер телефона, сведения, сообщённые в разговоре",
                processor="не привлекается",
                actions=PURPOSE_DETAILS["call_recording_qa"]["actions"],
                methods=_MIXED,
                term="1 год с даты разговора или до отзыва согласия"),
]

TEXTS = {(t.purpose, t.version): t for t in VERSIONS}
#: The version offered for new consents: the newest of each purpose.
DEFAULT_VERSION = {t.purpose: t.version for t in VERSIONS}


def render(text: ConsentText, controller_name: str | None, controller_address: str | None) -> str:
    """The exact wording of ``text`` with the controller's name and address (legacy versions: the body)."""
    if not text.items:
        return text.body
    i = text.items
    processor = "" if i["processor"] == "не привлекается" else f" Обработку по поручению оператора ведёт: {i['processor']}."
    return (f"Я свободно, своей волей и в своём интересе даю согласие оператору {controller_name} "
            f"(адрес: {controller_address}) на обработку моих персональных данных. Цель: {i['purpose']}. "
            f"Перечень данных: {i['data']}. Действия: {i['actions']}. Способы обработки: {i['methods']}."
            f"{processor} Срок действия согласия: {i['term']}. {i['withdrawal']}")


def text_hash(purpose: str, version: str, controller_name: str | None = None,
              controller_address: str | None = None) -> str:
    """SHA-256 hex of the exact rendered text; raises ``KeyError`` for an unknown version."""
    return hashlib.sha256(render(TEXTS[(purpose, version)], controller_name, controller_address)
                          .encode("utf-8")).hexdigest()
