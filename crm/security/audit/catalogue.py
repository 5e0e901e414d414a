"""The catalogue of access-log actions and the Russian labels the DPO's pages and documents show.

Codes are what the log stores (``citizen.view``, ``keys.rotate`` …); labels are for people. An action
this version does not know is shown as written. Nothing here touches the database.
"""
from __future__ import annotations

import re

from crm.i18n import N_, translate
from crm.security.permissions import ROLE_NAMES_RU

# --- the catalogue of actions ------------------------------------------------------------------------

#: Reads of decrypted personal data (or of a recording). Alerts count these.
READ_ACTIONS = ("citizen.view", "citizen.reveal", "citizen.search", "appeal.view", "appeal.search", "transcript.view",
                "transcript.reveal", "csat.view",
                "transcript.search",
                "call.listen", "call.decrypt", "evaluation.view", "audit.report", "consent.history", "dsr.export",
                "telephony.match", "telephony.reveal", "telephony.pop", "ivr.lookup")
#: Changes to citizens, appeals, calls, consents and evaluations.
CHANGE_ACTIONS = ("citizen.create", "citizen.update", "appeal.create", "appeal.transition", "call.create",
                  "call.retranscribe", "transcript.create", "transcript.fail", "consent.grant", "consent.refuse",
                  "consent.withdraw", "evaluation.create", "citizen.erase", "citizen.rectify", "appeal.assign",
                  "executor.create", "recording.destroy", "breach.acknowledge", "appeal.duplicate", "call.attach",
                  "appeal.comment", "appeal.extend", "extension.request", "extension.decide", "callback.attempt")
AUTH_ACTIONS = ("auth.login", "auth.login_failed", "auth.logout", "auth.reauth", "auth.session_end", "user.create", "token.issue",
                "user.disable", "user.enable", "user.role", "user.password_reset", "user.end_sessions", "token.revoke",
                "auth.password_ok", "auth.mfa_enrol", "auth.mfa_failed", "auth.mfa_reset", "auth.recovery_code_used",
                "auth.login_throttled")
SECURITY_ACTIONS = ("keys.rewrap", "recording.rekey", "keys.rotate", "keys.retire", "keys.index_start", "keys.index_backfill",
                    "keys.index_switch", "keys.index_drop", "security.decrypt_failed", "audit.checkpoint", "audit.attest",
                    "audit.export", "audit.alert_scan", "audit.alert_ack")

#: Russian labels for the DPO's pages and reports.
ACTION_LABELS = {
    "citizen.view": N_("просмотр карточки заявителя"), "citizen.reveal": N_("раскрытие телефона и адреса"),
    "citizen.search": N_("поиск заявителя по телефону"), "appeal.view": N_("просмотр обращения"),
    "appeal.search": N_("поиск обращений по номеру, телефону, фамилии или адресу"),
    "transcript.view": N_("просмотр расшифровки звонка"),
    "transcript.reveal": N_("раскрытие данных заявителя в расшифровке звонка"),
    "transcript.search": N_("поиск фразы в расшифровке звонка"),
    "call.listen": N_("прослушивание записи звонка"),
    "call.decrypt": N_("расшифрование записи для распознавания речи"), "evaluation.view": N_("просмотр оценки звонка"), "audit.report": N_("отчёт о доступе (ответственный за ПДн)"),
    "citizen.create": N_("регистрация заявителя"), "citizen.update": N_("изменение данных заявителя"),
    "citizen.rectify": N_("уточнение данных заявителя (152-ФЗ ст. 21 ч. 2)"),
    "citizen.erase": N_("уничтожение данных заявителя"),
    "recording.destroy": N_("уничтожение записи и расшифровки звонка (отзыв согласия)"),
    "appeal.create": N_("регистрация обращения"), "appeal.transition": N_("изменение статуса обращения"),
    "appeal.assign": N_("передача обращения исполнителю"),
    "breach.acknowledge": N_("нарушение срока принято в работу руководителем"), "executor.create": N_("добавление исполнителя в справочник"),
    "appeal.duplicate": N_("обращение отмечено дубликатом (объединение)"),
    "call.create": N_("загрузка записи звонка"), "call.attach": N_("добавление звонка к обращению"),
    "call.retranscribe": N_("повторная расшифровка звонка"),
    "appeal.comment": N_("комментарий к обращению"), "appeal.extend": N_("продление срока выполнения обращения"),
    "extension.request": N_("запрос исполнителя о продлении срока"),
    "extension.decide": N_("решение по запросу о продлении срока"),
    "transcript.create": N_("расшифровка звонка (автоматически)"),
    "transcript.fail": N_("ошибка расшифровки звонка"), "consent.grant": N_("получение согласия"),
    "consent.refuse": N_("отказ в согласии"), "consent.withdraw": N_("отзыв согласия"),
    "evaluation.create": N_("оценка звонка"), "auth.login": N_("вход в систему"), "auth.login_failed": N_("неудачный вход"),
    "auth.password_ok": N_("пароль верен, ожидается второй фактор"),
    "auth.mfa_enrol": N_("настройка второго фактора (TOTP)"), "auth.mfa_failed": N_("неверный код второго фактора"),
    "auth.mfa_reset": N_("сброс второго фактора администратором"),
    "auth.recovery_code_used": N_("вход по коду восстановления"),
    "auth.login_throttled": N_("попытка входа отклонена ограничением частоты"),
    "auth.logout": N_("выход из системы"), "user.create": N_("создание учётной записи"), "token.issue": N_("выдача API-токена"),
    "user.disable": N_("отключение учётной записи"), "user.enable": N_("включение учётной записи"),
    "user.role": N_("смена роли учётной записи"), "user.password_reset": N_("сброс пароля учётной записи"),
    "user.end_sessions": N_("завершение сеансов пользователя"), "token.revoke": N_("отзыв API-токена"),
    "auth.reauth": N_("повторный ввод пароля перед выгрузкой"),
    "auth.session_end": N_("завершение своего сеанса на другом устройстве"),
    "keys.rewrap": N_("перешифрование ключей данных"),
    "recording.rekey": N_("перешифрование записи звонка под собственный ключ"),
    "keys.rotate": N_("смена ключа шифрования ключей (KEK)"), "keys.retire": N_("вывод ключа шифрования из оборота"),
    "keys.index_start": N_("начало смены ключа поискового индекса"),
    "keys.index_backfill": N_("заполнение поискового индекса новым ключом"),
    "keys.index_switch": N_("переход поискового индекса на новый ключ"),
    "keys.index_drop": N_("удаление поискового индекса со старым ключом"), "security.decrypt_failed": N_("ошибка расшифрования"),
    "audit.checkpoint": N_("контрольная точка журнала"), "audit.attest": N_("заверение журнала ответственным за ПДн"),
    "audit.export": N_("выгрузка журнала в архив"), "audit.alert_scan": N_("проверка журнала на подозрительный доступ"),
    "audit.alert_ack": N_("оповещение рассмотрено"),
    # written by crm.consent and crm.qa
    "consent.history": N_("просмотр истории согласий"), "dsr.register": N_("регистрация запроса субъекта ПДн"),
    "dsr.extend": N_("продление срока ответа на запрос"), "dsr.answer": N_("ответ на запрос субъекта ПДн"),
    "dsr.export": N_("выгрузка всех данных заявителя"),
    "dsr.verify": N_("установление личности заявителя по запросу"),
    "dsr.export_approve": N_("утверждение выгрузки вторым ответственным за ПДн"),
    "dsr.deliver": N_("выдача выгрузки заявителю"), "erasure.request": N_("требование уничтожить данные"),
    "erasure.approve": N_("утверждение уничтожения данных"), "erasure.reject": N_("отказ в уничтожении данных"),
    "erasure.act": N_("акт об уничтожении данных"), "selfservice.link": N_("ссылка на личную страницу заявителя"),
    "selfservice.login": N_("вход заявителя на личную страницу"), "selfservice.code": N_("код для входа заявителя"),
    "selfservice.refused": N_("отказ во входе на личную страницу"), "sms.send": N_("отправка SMS"),
    "email.send": N_("отправка письма заявителю"),
    "notification.template_update": N_("изменение шаблона уведомлений заявителям"),
    "sms.outbox_view": N_("просмотр исходящих SMS"),
    "purpose.update": N_("изменение реестра целей обработки"),
    "purpose.propose": N_("предложение изменить реестр целей (ждёт второго ответственного)"),
    "purpose.approve": N_("подтверждение изменения реестра целей вторым ответственным"),
    "purpose.reject": N_("отклонение предложения изменить реестр целей"), "retention.run": N_("уничтожение по истечении сроков"),
    "evaluation.acknowledge": N_("оператор ознакомлен с оценкой"), "evaluation.dispute": N_("оспаривание оценки"),
    "evaluation.resolve": N_("решение по спору об оценке"),
    # written by crm.telephony
    "telephony.match": N_("сверка номера звонящего со списком обратных звонков"),
    "telephony.reveal": N_("раскрытие номера для обратного звонка"),
    "telephony.pop": N_("карточка звонящего на экране оператора"),
    "callback.attempt": N_("попытка обратного звонка"),
    "ivr.lookup": N_("справка голосового меню (IVR)"),
    # written by crm.csat
    "csat.answer": N_("ответ заявителя в опросе удовлетворённости"),
    "csat.view": N_("просмотр комментария заявителя в опросе удовлетворённости"),
    "csat.forget": N_("удаление комментариев заявителя в опросе после отзыва согласия"),
}
FIELD_LABELS = {"full_name": N_("ФИО"), "phone": N_("телефон"), "email": N_("эл. почта"), "address": N_("адрес"),
                "apartment": N_("квартира"), "description": N_("суть обращения"), "comment": N_("комментарий"),
                "recording": N_("запись звонка"), "transcript": N_("расшифровка"), "consents": N_("согласия"),
                "csat_comment": N_("комментарий в опросе удовлетворённости")}


#: Outcomes of access-log entries, for documents (the log and exports keep the codes).
OUTCOME_LABELS = {"ok": N_("выполнено"), "denied": N_("отказано"), "failed": N_("ошибка"), "not_found": N_("не найдено"),
                  "erased": N_("данные уничтожены"), "repeat": N_("повторно (уже было сделано)"),
                  "restarted": N_("перезапуск"), "unavailable": N_("сведений нет")}
#: Background jobs and commands that act as ``job:<name>`` (:func:`system_actor`).
SYSTEM_ACTOR_LABELS = {"transcribe_call": N_("расшифровка звонка"),
                       "rekey_recordings": N_("перешифрование старых записей под собственные ключи"), "retention": N_("соблюдение сроков хранения"),
                       "send_status_sms": N_("отправка SMS о статусе обращения"),
                       "send_csat_survey": N_("отправка опроса удовлетворённости"),
                       "send_notification": N_("отправка уведомления заявителю"), "audit_export": N_("выгрузка журнала"),
                       "cli": N_("команда администратора"), "destruction_act": N_("акт об уничтожении данных"),
                       "keys_index": N_("обновление поисковых индексов"), "keys_retire": N_("вывод ключа из оборота"),
                       "keys_rotate": N_("смена ключей шифрования"), "audit_checkpoint": N_("контрольная точка журнала"),
                       "audit_alert_scan": N_("проверка необычного доступа"), "attest": N_("заверение контрольной точки"),
                       "qa_recheck": N_("пересчёт автоматических проверок звонков")}
#: Roles that are not staff roles (crm.security.permissions.ROLE_NAMES_RU has those).
EXTRA_ROLE_LABELS = {"system": N_("система"), "none": N_("без входа в систему"), "citizen": N_("заявитель")}


def outcome_label(code: str | None) -> str:
    return translate(OUTCOME_LABELS.get(code or "", code or ""))


def role_label(role: str | None) -> str:

    return translate(ROLE_NAMES_RU.get(role or "", EXTRA_ROLE_LABELS.get(role or "", role or "")))


def actor_label(actor: str | None, person=None) -> str:
    """Who acted, for people: a staff member's name, «система: расшифровка звонка» for a job,
    «заявитель (страница самообслуживания)», «неизвестный пользователь (не вошёл в систему)», «АТС
    (события телефонии)» for the PBX's webhook (``pbx:default``; «АТС «asterisk-1» …» for a named source)."""
    if person is not None:
        return person.display_name
    actor = actor or ""
    if actor.startswith("job:"):
        job = actor[4:]
        label = SYSTEM_ACTOR_LABELS.get(job, SYSTEM_ACTOR_LABELS.get(job.split(":")[0], job))
        return translate(N_("система: %(job)s"), job=translate(label))
    if actor == "anonymous":
        return translate(N_("неизвестный пользователь (не вошёл в систему)"))
    if actor.startswith("citizen:"):
        return translate(N_("заявитель (страница самообслуживания)"))
    if actor.startswith("pbx:"):  # the telephony webhook (crm.telephony.api): pbx:<X-CRM-Source or default>
        source = actor[4:]
        if source in ("", "default"):
            return translate(N_("АТС (события телефонии)"))
        return translate(N_("АТС «%(source)s» (события телефонии)"), source=source)
    return actor



# --- the wording of ``detail`` ----------------------------------------------------------------------

#: The English phrases the code writes into an entry's ``detail`` (``grep -rn "detail=" crm``), with
#: their Russian wording for the DPO's log page and the access report (page and CSV). A stored entry
#: is hash-chained and never changes: the wording is applied only when it is shown. A detail is read
#: part by part (parts separated by «; »); a part that matches one pattern whole is shown in Russian,
#: any other part as stored — ids and ``key=value`` counters, texts already written in Russian, and
#: phrases a newer version writes that are not listed here yet. ``fields`` groups are field codes
#: (:data:`FIELD_LABELS`), «none found» meaning none; other groups are put in as written.
DETAIL_PHRASES: tuple[tuple[re.Pattern, str], ...] = tuple((re.compile(pattern), label) for pattern, label in (
    # crm.calls.services (transcript.reveal)
    (r"identifiers shown unmasked: (?P<fields>.+)", N_("показаны без маски: %(fields)s")),
    (r"no purpose given \(API default\)", N_("цель не указана (по умолчанию API)")),
    # crm.calls.services (retention, retranscription), crm.calls.search
    (r"consent to call_recording_qa withdrawn", N_("отозвано согласие на запись звонков для контроля качества")),
    (r"was (?P<status>[a-z_]+)", N_("прежний статус: %(status)s")),
    (r"hits=(?P<count>\d+)", N_("найдено: %(count)s")),
    (r"recording re-encrypted under its own data key", N_("запись перешифрована под собственный ключ данных")),
    # crm.qa (crm qa recheck reads the transcript)
    (r"automatic QA checks recomputed \(crm qa recheck\)", N_("пересчёт автоматических проверок (crm qa recheck)")),
    # crm.appeals, crm.citizens
    (r"merged comments", N_("комментарии из объединённого обращения")),
    (r"house", N_("поиск дома по адресу")),
    (r"selfservice", N_("страница самообслуживания")),
    (r"repeat_candidates", N_("поиск повторных обращений")),
    (r"repeat_candidates;building", N_("поиск повторных обращений, в том числе по дому")),
    (r"executor_work", N_("работа исполнителя")),
    # crm.telephony
    (r"callbacks compared=(?P<compared>\d+) matched=(?P<matched>\d+)",
     N_("сверено с обратными звонками: %(compared)s, совпало: %(matched)s")),
    (r"later calls compared=(?P<compared>\d+) matched=(?P<matched>\d+)",
     N_("сверено с последующими звонками: %(compared)s, совпало: %(matched)s")),
    (r"appeal_status:number", N_("статус обращения по номеру")),
    (r"appeal_status:phone", N_("статус обращения по телефону")),
    (r"outage", N_("сведения об отключениях")),
    # crm.csat
    (r"(?P<count>\d+) survey comments", N_("комментарии в опросах: %(count)s")),
    (r"(?P<count>\d+) survey comments \(export\)", N_("комментарии в опросах (выгрузка): %(count)s")),
    (r"(?P<count>\d+) survey comment\(s\) cleared after the consent was withdrawn",
     N_("удалено комментариев в опросах после отзыва согласия: %(count)s")),
    (r"(?P<count>\d+) survey comment\(s\) cleared: the retention period ended",
     N_("удалено комментариев в опросах по истечении срока хранения: %(count)s")),
    # crm.dpo (the DPO's own reports), crm.consent
    (r"format=(?P<format>[a-z]+) entries=(?P<count>\d+)", N_("формат: %(format)s, записей: %(count)s")),
    (r"already active: (?P<id>\S+)", N_("уже действует: %(id)s")),
))


def _detail_fields(codes: str) -> str:
    if codes == "none found":
        return translate(N_("ничего не найдено"))
    return ", ".join(translate(FIELD_LABELS.get(c, c)) for c in codes.split(", "))


def detail_label(detail: str | None) -> str:
    """An entry's ``detail`` in words (:data:`DETAIL_PHRASES`): «identifiers shown unmasked: address,
    full_name, phone; no purpose given (API default)» -> «показаны без маски: адрес, ФИО, телефон; цель
    не указана (по умолчанию API)»; a part no pattern matches whole is kept as stored; ``""`` for None."""
    parts = []
    for part in (detail or "").split("; ") if detail else []:
        for pattern, label in DETAIL_PHRASES:
            m = pattern.fullmatch(part)
            if m:
                values = {k: _detail_fields(v) if k == "fields" else v for k, v in m.groupdict().items()}
                parts.append(translate(label, **values))
                break
        else:
            parts.append(part)
    return "; ".join(parts)


# --- the purpose of the DPO's own reads ------------------------------------------------------------

#: the purpose logged by the DPO's reports and data-subject requests (crm.dpo, crm.consent.rights)
REPORT_PURPOSE = "data_subject_request"


def action_label(code: str | None) -> str:
    """The Russian label of an action code (:data:`ACTION_LABELS`), else the code itself (an
    action this version does not know is shown as written)."""
    return translate(ACTION_LABELS.get(code or "", code or ""))


def entry_fields(row) -> list[str]:
    """The field categories of an access-log row, as a list."""
    return [f for f in (row.fields or "").split(",") if f]


def entry_labels(row, person, purposes: dict[str, str]) -> dict[str, str]:
    """The Russian labels of an access-log row's codes (``actor_label``, ``role_label``,
    ``action_label``, ``fields_label``, ``purpose_label``, ``outcome_label``, ``detail_label``: the
    detail's known phrases in words, :func:`detail_label`), a code with no label
    standing for itself; ``person``: the staff member of ``actor_id`` (or None), ``purposes``:
    :func:`crm.consent.services.purpose_names`. Shared by the per-citizen report and the DPO's log viewer."""
    return {"actor_label": actor_label(row.actor, person), "role_label": role_label(row.actor_role),
            "action_label": action_label(row.action),
            "fields_label": ", ".join(translate(FIELD_LABELS.get(f, f)) for f in entry_fields(row)),
            "purpose_label": purposes.get(row.purpose or "", row.purpose or ""),
            "outcome_label": outcome_label(row.outcome), "detail_label": detail_label(row.detail)}
