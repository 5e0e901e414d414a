"""Codes of incidents and the permitted interruptions of utility services (ПП РФ № 354, Appendix 1).

Topics are the appeals' topic codes (design.md's stable interface; :data:`crm.appeals.catalog.TOPICS`,
which lies above this package) that an outage can concern; a test keeps them a subset."""
from __future__ import annotations

from dataclasses import dataclass

from crm.i18n import N_

#: The services an incident can concern: the appeals' topic codes (same codes, same labels).
TOPICS = {
    "cold_water": N_("Холодное водоснабжение (ХВС)"),
    "hot_water": N_("Горячее водоснабжение (ГВС)"),
    "heating": N_("Отопление"),
    "sewerage": N_("Водоотведение, канализация"),
    "electricity": N_("Электроснабжение"),
    "gas": N_("Газоснабжение"),
    "lift": N_("Лифт"),
    "intercom": N_("Домофон"),
    "waste": N_("Вывоз мусора, мусоропровод"),
    "roof_leak": N_("Кровля, протечки"),
}

#: planned work (announced) or an emergency
KINDS = {"planned": N_("Плановое отключение"), "emergency": N_("Аварийное отключение")}

#: what the incident covers: buildings of the register, every house of a street, of a district
SCOPES = {"buildings": N_("Дома"), "street": N_("Улица"), "district": N_("Район")}

STATUSES = {"active": N_("Действует"), "upcoming": N_("Запланировано"), "closed": N_("Закрыто")}


@dataclass(frozen=True)
class Permitted:
    """A permitted interruption of a utility service: ``once_h`` hours at a time (None: no limit at a
    time), ``month_h`` hours in total in a calendar month, the clause of ПП РФ № 354 Appendix 1 and a
    note for the cases the hotline cannot tell from the incident."""

    once_h: float | None
    month_h: float
    clause: str
    note: str = ""


#: ПП РФ от 06.05.2011 № 354 «О предоставлении коммунальных услуг собственникам и пользователям
#: помещений в многоквартирных домах и жилых домов», Приложение № 1 «Требования к качеству
#: коммунальных услуг». For every hour of interruption beyond the permitted duration (per month, in
#: total) the month's payment for the service is reduced by 0.15 % (the same clauses):
#:
#: - п. 1, холодное водоснабжение: 8 ч (суммарно) в течение 1 месяца, 4 ч единовременно (при аварии в
#:   централизованных сетях — по требованиям законодательства о техническом регулировании);
#: - п. 4, горячее водоснабжение: 8 ч (суммарно) в течение 1 месяца, 4 ч единовременно, при аварии на
#:   тупиковой магистрали — 24 ч подряд; ежегодные профилактические работы — по СанПиН;
#: - п. 8, водоотведение: не более 8 ч (суммарно) в течение 1 месяца (в том числе при аварии);
#: - п. 9, электроснабжение: 2 ч при двух независимых взаимно резервирующих источниках питания,
#:   24 ч при одном источнике;
#: - п. 10, газоснабжение: не более 4 ч (суммарно) в течение 1 месяца;
#: - п. 15, отопление: не более 24 ч (суммарно) в течение 1 месяца; не более 16 ч единовременно при
#:   температуре в жилых помещениях от +12 °C до нормативной, 8 ч — от +10 до +12 °C, 4 ч — от +8 до
#:   +10 °C.
#:
#: Lifts, intercoms, refuse chutes and roofs are maintenance of common property (ПП РФ № 290, № 491),
#: not a utility service of Appendix 1: no recalculation flag.
PERMITTED: dict[str, Permitted] = {
    "cold_water": Permitted(4, 8, "п. 1"),
    "hot_water": Permitted(4, 8, "п. 4", N_("при аварии на тупиковой магистрали — 24 ч подряд")),
    "sewerage": Permitted(None, 8, "п. 8"),
    "electricity": Permitted(2, 24, "п. 9", N_("2 ч — при двух независимых источниках питания, 24 ч — при одном")),
    "gas": Permitted(None, 4, "п. 10"),
    "heating": Permitted(16, 24, "п. 15", N_("16 ч — при температуре в квартире от +12 °C; 8 ч — от +10 °C; "
                                             "4 ч — от +8 °C")),
}
#: the month's payment is reduced by this share per hour beyond the permitted duration (Appendix 1)
REDUCTION_PER_HOUR = 0.0015
BASIS = "ПП РФ № 354, прил. 1"
