"""Categories, topics, channels and the lifecycle table (codes are a stable interface, design.md)."""
from __future__ import annotations

from datetime import timedelta

from crm.i18n import N_

CATEGORIES = {
    "emergency": N_("Аварийная"),
    "routine": N_("Плановая"),
    "consultation": N_("Консультация"),
    "complaint": N_("Жалоба"),
}

TOPICS = {
    "cold_water": N_("Холодное водоснабжение (ХВС)"),
    "hot_water": N_("Горячее водоснабжение (ГВС)"),
    "heating": N_("Отопление"),
    "sewerage": N_("Водоотведение, канализация"),
    "electricity": N_("Электроснабжение"),
    "gas": N_("Газоснабжение"),
    "lift": N_("Лифт"),
    "roof_leak": N_("Кровля, протечки"),
    "common_areas": N_("Места общего пользования, уборка"),
    "yard": N_("Придомовая территория"),
    "waste": N_("Вывоз мусора, мусоропровод"),
    "intercom": N_("Домофон"),
    "billing": N_("Начисления и перерасчёт"),
    "meters": N_("Приборы учёта"),
    "noise": N_("Шум"),
    "management": N_("Работа управляющей компании"),
}

CHANNELS = {"phone": N_("Телефон"), "web": N_("Сайт"), "email": N_("Эл. почта"), "letter": N_("Письмо"), "visit": N_("Личный приём"),
            "api": N_("Интеграция")}

STATUSES = {
    "received": N_("Принято"),
    "consulted": N_("Консультация дана"),
    "escalated": N_("Передано исполнителю"),
    "in_progress": N_("В работе"),
    "resolved": N_("Выполнено"),
    "closed": N_("Закрыто"),
    "rejected": N_("Отклонено"),
    "duplicate": N_("Дубликат"),
}

# history rows that keep the status (AppealEvent.kind), as the history shows them
HISTORY_KINDS = {
    "note": N_("отчёт исполнителя о ходе работ"),
    "extension_request": N_("исполнитель просит продлить срок"),
    "extension": N_("срок выполнения продлён"),
    "extension_rejected": N_("в продлении срока отказано"),
}

# from-status → allowed to-statuses (design.md, "Appeal lifecycle"): the one table every transition is
# checked against (crm.appeals.services.transition). «Консультация дана» (consulted) is a closure at the
# first contact, in one step; consulted → closed stays allowed (a formal closure, e.g. after the survey).
# A duplicate may be found after the hand-over too (two neighbours report one leak).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "received": ("consulted", "escalated", "rejected", "duplicate"),
    "consulted": ("closed", "escalated"),
    "escalated": ("in_progress", "resolved", "rejected", "duplicate"),
    "in_progress": ("resolved", "escalated", "duplicate"),
    "resolved": ("closed", "in_progress"),
    "closed": ("in_progress",),
    "rejected": (),
    "duplicate": (),
}
#: Re-openings (counted in ``reopen_count``; each starts a new resolution cycle): work on an appeal
#: that was resolved, closed or answered on the call starts again.
REOPEN = {("resolved", "in_progress"), ("closed", "in_progress"), ("consulted", "escalated")}
#: Statuses in which the appeal is closed for the citizen (``closed_at`` set on entering them).
CLOSING = ("consulted", "closed", "rejected", "duplicate")

# SLA per category: (calendar, escalate within, status update within, resolve within).
# Emergencies run 24/7 (ПП РФ № 416 п. 13: emergency localised within 30 min — resolution within
# 24 h here); routine work 10 working days (ПП РФ № 416 п. 34: a written appeal answered within
# 10 working days); complaints 30 days (59-ФЗ ст. 12); consultations are closed on the call.
SLA = {
    "emergency": ("24x7", timedelta(hours=1), timedelta(hours=24), timedelta(hours=24)),
    "routine": ("working_days", timedelta(hours=1), timedelta(hours=24), 10),
    "consultation": ("working_days", timedelta(hours=1), timedelta(hours=24), 1),
    "complaint": ("calendar_days", timedelta(hours=1), timedelta(hours=24), 30),
}

# SLA deadlines of an appeal (the columns ``escalate_by``, ``update_by``, ``resolve_by``), with the
# words the UI puts before «до …» (the same as the appeal page's «Сроки»).
DEADLINE_KINDS = {
    "escalate": N_("передать исполнителю"),
    "update": N_("обновить статус"),
    "resolve": N_("выполнить"),
}

# status → the deadlines still to be met in it (design.md, "Appeal lifecycle"). Escalation is met
# by leaving «received» (handed over, answered on the call, rejected); resolution by reaching
# «resolved» or «consulted» (and due again, on the new cycle's deadline, when the appeal is re-opened); the
# status-update clock restarts at every transition and runs until the appeal is closed (the citizen told:
# «консультация дана» closes it on the call), rejected or marked a duplicate. Consultations are answered
# on the call: they have no escalation deadline.
PENDING_DEADLINES: dict[str, tuple[str, ...]] = {
    "received": ("escalate", "update", "resolve"),
    "consulted": (),
    "escalated": ("update", "resolve"),
    "in_progress": ("update", "resolve"),
    "resolved": ("update",),
    "closed": (),
    "rejected": (),
    "duplicate": (),
}
NO_ESCALATION = {"consultation"}
