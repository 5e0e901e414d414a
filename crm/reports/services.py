"""KPI queries for a period of Europe/Moscow days (``CRM_TIMEZONE``).

Read-only aggregates over the statistical columns of appeals, calls and evaluations (category,
topic, status, dates, scores): nothing is decrypted, so nothing goes into the access log. The
statistical columns survive a citizen's erasure, so erased citizens' appeals still count."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from crm.appeals import services as appeals
from crm.calls import services as calls
from crm.csat import services as csat
from crm.db import utcnow
from crm.errors import InvalidInput
from crm.i18n import lazy_gettext as _l
from crm.timeutil import day_start, local_date, local_tz, parse_day
from crm.qa import services as qa

DEFAULT_DAYS = 30


class ReportError(InvalidInput):
    """A bad report parameter; ``field`` names it (code ``invalid_<field>``); the message is Russian."""

    def __init__(self, message: str, field: str):
        super().__init__(message, field=field, code=f"invalid_{field}")


@dataclass(frozen=True)
class Period:
    """Days ``first``..``last`` inclusive, and the UTC instants ``[start, end)`` they span."""

    first: date
    last: date
    start: datetime
    end: datetime


def period(first: str | None, last: str | None) -> Period:
    """The period from the ``from``/``to`` query values; ``to`` defaults to today (report time
    zone), ``from`` to 29 days before ``to``. Raises :class:`crm.errors.InvalidInput`."""
    last_day = parse_day(last, "to") if last else local_date(utcnow())
    first_day = parse_day(first, "from") if first else last_day - timedelta(days=DEFAULT_DAYS - 1)
    if first_day > last_day:
        raise ReportError(_l("начало периода позже его конца"), "from")
    return Period(first_day, last_day, day_start(first_day), day_start(last_day + timedelta(days=1)))


def kpi(p: Period, now: datetime | None = None) -> dict:
    """KPIs of the appeals received, calls recorded and evaluations made in ``p``: each feature's
    figures (:func:`crm.appeals.services.kpi_figures`, :func:`crm.csat.services.kpi_figures`,
    :func:`crm.calls.services.kpi_figures`, :func:`crm.qa.services.kpi_figures`) under one period. Ratios
    are 0–1 and ``None`` when there is nothing to divide. The CSAT figures count the survey answers
    received in the period; first-contact resolution leaves out the appeals whose citizen answered the
    survey «не решено» or «обращался не впервые» (:func:`crm.csat.services.not_first_contact`)."""
    now = now or utcnow()
    return {
        "from": p.first.isoformat(), "to": p.last.isoformat(), "timezone": str(local_tz()),
        **appeals.kpi_figures(p.start, p.end, now, not_first_contact=csat.not_first_contact()),
        **csat.kpi_figures(p.start, p.end),
        **calls.kpi_figures(p.start, p.end),
        **qa.kpi_figures(p.start, p.end),
    }
