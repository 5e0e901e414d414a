"""The catalogue of access-log actions and the Russian labels the DPO's pages and documents show.

Codes are what the log stores (``citizen.view``, ``keys.rotate`` …); labels are for people. An action
this version does not know is shown as written. Nothing here touches the database.
"""
from __future__ import annotations

from crm.security.permissions import ROLE_NAMES_RU

# --- the catalogue of actions ------------------------------------------------------------------------

#: Reads of decrypted personal data (or of a recording). Alerts count these.
READ_ACTIONS = ("citizen.view", "citizen.reveal", "citizen.search", "appeal.view", "appeal.search", "transcript.view",
                "transcript.search",
                "call.listen", "call.decrypt", "evaluation.view", "audit.report", "consent.history", "dsr.export")
#: Changes to citizens, appeals, calls, consents and evaluations.
CHANGE_ACTIONS = ("citizen.create", "citizen.update", "appeal.create", "appeal.transition", "call.create",
                  "call.retranscribe", "transcript.create", "transcript.fail", "consent.grant", "consent.refuse",
                  "consent.withdraw", "evaluation.create", "citizen.erase", "citizen.rectify", "appeal.assign",
                  "executor.create", "recording.destroy")
AUTH_ACTIONS = ("auth.login", "auth.login_failed", "auth.logout", "user.create", "token.issue")
SECURITY_ACTIONS = ("keys.rewrap", "keys.rotate", "keys.retire", "keys.index_start", "keys.index_backfill",
                    "keys.index_switch", "keys.index_drop", "security.decrypt_failed", "audit.checkpoint", "audit.attest",
                    "audit.export", "audit.alert_scan", "audit.alert_ack")

#: Russian labels for the DPO's pages and reports.
ACTION_LABELS = {
    "citizen.view": "просмотр карточки заявителя", "citizen.reveal": "раскрытие телефона и адреса",
    "citizen.search": "поиск заявителя по телефону", "appeal.view": "просмотр обращения",
    "appeal.search": "поиск обращений по номеру, телефону, фамилии или адресу",
    "transcript.view": "просмотр расшифровки звонка", "transcript.search": "поиск фразы в расшифровке звонка",
    "call.listen": "прослушивание записи звонка",
    "call.decrypt": "расшифрование записи для распознавания речи", "evaluation.view": "просмотр оценки звонка", "audit.report": "отчёт о доступе (ответственный за ПДн)",
    "citizen.create": "регистрация заявителя", "citizen.update": "изменение данных заявителя",
    "citizen.rectify": "уточнение данных заявителя (152-ФЗ ст. 21 ч. 2)",
    "citizen.erase": "уничтожение данных заявителя",
    "recording.destroy": "уничтожение записи и расшифровки звонка (отзыв согласия)",
    "appeal.create": "регистрация обращения", "appeal.transition": "изменение статуса обращения",
    "appeal.assign": "передача обращения исполнителю", "executor.create": "добавление исполнителя в справочник",
    "call.create": "загрузка записи звонка", "call.retranscribe": "повторная расшифровка звонка",
    "transcript.create": "расшифровка звонка (автоматически)",
    "transcript.fail": "ошибка расшифровки звонка", "consent.grant": "получение согласия",
    "consent.refuse": "отказ в согласии", "consent.withdraw": "отзыв согласия",
    "evaluation.create": "оценка звонка", "auth.login": "вход в систему", "auth.login_failed": "неудачный вход",
    "auth.logout": "выход из системы", "user.create": "создание учётной записи", "token.issue": "выдача API-токена",
    "keys.rewrap": "перешифрование ключей данных",
    "keys.rotate": "смена ключа шифрования ключей (KEK)", "keys.retire": "вывод ключа шифрования из оборота",
    "keys.index_start": "начало смены ключа поискового индекса",
    "keys.index_backfill": "заполнение поискового индекса новым ключом",
    "keys.index_switch": "переход поискового индекса на новый ключ",
    "keys.index_drop": "удаление поискового индекса со старым ключом", "security.decrypt_failed": "ошибка расшифрования",
    "audit.checkpoint": "контрольная точка журнала", "audit.attest": "заверение журнала ответственным за ПДн",
    "audit.export": "выгрузка журнала в архив", "audit.alert_scan": "проверка журнала на подозрительный доступ",
    "audit.alert_ack": "оповещение рассмотрено",
    # written by crm.consent and crm.qa
    "consent.history": "просмотр истории согласий", "dsr.register": "регистрация запроса субъекта ПДн",
    "dsr.extend": "продление срока ответа на запрос", "dsr.answer": "ответ на запрос субъекта ПДн",
    "dsr.export": "выгрузка всех данных заявителя",
    "dsr.verify": "установление личности заявителя по запросу",
    "dsr.export_approve": "утверждение выгрузки вторым ответственным за ПДн",
    "dsr.deliver": "выдача выгрузки заявителю", "erasure.request": "требование уничтожить данные",
    "erasure.approve": "утверждение уничтожения данных", "erasure.reject": "отказ в уничтожении данных",
    "erasure.act": "акт об уничтожении данных", "selfservice.link": "ссылка на личную страницу заявителя",
    "selfservice.login": "вход заявителя на личную страницу", "selfservice.code": "код для входа заявителя",
    "selfservice.refused": "отказ во входе на личную страницу", "sms.send": "отправка SMS",
    "sms.outbox_view": "просмотр исходящих SMS",
    "purpose.update": "изменение реестра целей обработки", "retention.run": "уничтожение по истечении сроков",
    "evaluation.acknowledge": "оператор ознакомлен с оценкой", "evaluation.dispute": "оспаривание оценки",
    "evaluation.resolve": "решение по спору об оценке",
}
FIELD_LABELS = {"full_name": "ФИО", "phone": "телефон", "email": "эл. почта", "address": "адрес",
                "apartment": "квартира", "description": "суть обращения", "comment": "комментарий",
                "recording": "запись звонка", "transcript": "расшифровка", "consents": "согласия"}


#: Outcomes of access-log entries, for documents (the log and exports keep the codes).
OUTCOME_LABELS = {"ok": "выполнено", "denied": "отказано", "failed": "ошибка", "not_found": "не найдено",
                  "erased": "данные уничтожены", "repeat": "повторно (уже было сделано)",
                  "restarted": "перезапуск"}
#: Background jobs and commands that act as ``job:<name>`` (:func:`system_actor`).
SYSTEM_ACTOR_LABELS = {"transcribe_call": "расшифровка звонка", "retention": "соблюдение сроков хранения",
                       "send_status_sms": "отправка SMS о статусе обращения", "audit_export": "выгрузка журнала",
                       "cli": "команда администратора", "destruction_act": "акт об уничтожении данных",
                       "keys_index": "обновление поисковых индексов", "keys_retire": "вывод ключа из оборота",
                       "keys_rotate": "смена ключей шифрования", "audit_checkpoint": "контрольная точка журнала",
                       "audit_alert_scan": "проверка необычного доступа", "attest": "заверение контрольной точки"}
#: Roles that are not staff roles (crm.security.permissions.ROLE_NAMES_RU has those).
EXTRA_ROLE_LABELS = {"system": "система", "none": "без входа в систему", "citizen": "заявитель"}


def outcome_label(code: str | None) -> str:
    return OUTCOME_LABELS.get(code or "", code or "")


def role_label(role: str | None) -> str:

    return ROLE_NAMES_RU.get(role or "", EXTRA_ROLE_LABELS.get(role or "", role or ""))


def actor_label(actor: str | None, person=None) -> str:
    """Who acted, for people: a staff member's name, «система: расшифровка звонка» for a job,
    «заявитель (страница самообслуживания)», «неизвестный пользователь (не вошёл в систему)»."""
    if person is not None:
        return person.display_name
    actor = actor or ""
    if actor.startswith("job:"):
        job = actor[4:]
        return "система: " + SYSTEM_ACTOR_LABELS.get(job, SYSTEM_ACTOR_LABELS.get(job.split(":")[0], job))
    if actor == "anonymous":
        return "неизвестный пользователь (не вошёл в систему)"
    if actor.startswith("citizen:"):
        return "заявитель (страница самообслуживания)"
    return actor



# --- the purpose of the DPO's own reads ------------------------------------------------------------

#: the purpose logged by the DPO's reports and data-subject requests (crm.dpo, crm.consent.rights)
REPORT_PURPOSE = "data_subject_request"


def action_label(code: str | None) -> str:
    """The Russian label of an action code (:data:`ACTION_LABELS`), else the code itself (an
    action this version does not know is shown as written)."""
    return ACTION_LABELS.get(code or "", code or "")


def entry_fields(row) -> list[str]:
    """The field categories of an access-log row, as a list."""
    return [f for f in (row.fields or "").split(",") if f]


def entry_labels(row, person, purposes: dict[str, str]) -> dict[str, str]:
    """The Russian labels of an access-log row's codes (``actor_label``, ``role_label``,
    ``action_label``, ``fields_label``, ``purpose_label``, ``outcome_label``), a code with no label
    standing for itself; ``person``: the staff member of ``actor_id`` (or None), ``purposes``:
    :func:`crm.consent.services.purpose_names`. Shared by the per-citizen report and the DPO's log viewer."""
    return {"actor_label": actor_label(row.actor, person), "role_label": role_label(row.actor_role),
            "action_label": action_label(row.action),
            "fields_label": ", ".join(FIELD_LABELS.get(f, f) for f in entry_fields(row)),
            "purpose_label": purposes.get(row.purpose or "", row.purpose or ""),
            "outcome_label": outcome_label(row.outcome)}
