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
