"""Categories, topics, channels and the lifecycle table (codes are a stable interface, design.md)."""
from __future__ import annotations

from datetime import timedelta

CATEGORIES = {
    "emergency": "Аварийная",
    "routine": "Плановая",
    "consultation": "Консультация",
    "complaint": "Жалоба",
}

TOPICS = {
    "cold_water": "Холодное водоснабжение (ХВС)",
    "hot_water": "Горячее водоснабжение (ГВС)",
    "heating": "Отопление",
    "sewerage": "Водоотведение, канализация",
    "electricity": "Электроснабжение",
    "gas": "Газоснабжение",
    "lift": "Лифт",
    "roof_leak": "Кровля, протечки",
    "common_areas": "Места общего пользования, уборка",
    "yard": "Придомовая территория",
    "waste": "Вывоз мусора, мусоропровод",
    "intercom": "Домофон",
    "billing": "Начисления и перерасчёт",
    "meters": "Приборы учёта",
    "noise": "Шум",
    "management": "Работа управляющей компании",
}

CHANNELS = {"phone": "Телефон", "web": "Сайт", "email": "Эл. почта", "letter": "Письмо", "visit": "Личный приём",
            "api": "Интеграция"}

STATUSES = {
    "received": "Принято",
    "consulted": "Консультация дана",
    "escalated": "Передано исполнителю",
    "in_progress": "В работе",
    "resolved": "Выполнено",
    "closed": "Закрыто",
    "rejected": "Отклонено",
    "duplicate": "Дубликат",
}

# from-status → allowed to-statuses (design.md, "Appeal lifecycle"); closed → in_progress is a re-opening.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "received": ("consulted", "escalated", "rejected", "duplicate"),
    "consulted": ("closed", "escalated"),
    "escalated": ("in_progress", "resolved", "rejected"),
    "in_progress": ("resolved", "escalated"),
    "resolved": ("closed", "in_progress"),
    "closed": ("in_progress",),
    "rejected": (),
    "duplicate": (),
}
REOPEN = {("resolved", "in_progress"), ("closed", "in_progress")}

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
    "escalate": "передать исполнителю",
    "update": "обновить статус",
    "resolve": "выполнить",
}

# status → the deadlines still to be met in it (design.md, "Appeal lifecycle"). Escalation is met
# by leaving «received» (handed over, answered on the call, rejected); resolution by reaching
# «resolved» or «consulted» (and due again when the appeal is re-opened); the status-update clock
# restarts at every transition and runs until the appeal is closed (the citizen told), rejected or
# marked a duplicate. Consultations are answered on the call: they have no escalation deadline.
PENDING_DEADLINES: dict[str, tuple[str, ...]] = {
    "received": ("escalate", "update", "resolve"),
    "consulted": ("update",),
    "escalated": ("update", "resolve"),
    "in_progress": ("update", "resolve"),
    "resolved": ("update",),
    "closed": (),
    "rejected": (),
    "duplicate": (),
}
NO_ESCALATION = {"consultation"}
