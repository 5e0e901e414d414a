"""Clocks as data, on the Russian calendar: working days and hours (:mod:`crm.clocks.workcalendar`,
from the ``holidays`` package plus the administrators' overrides), deadline arithmetic and clock
definitions (:mod:`crm.clocks.deadlines`), the overrides table and the calendar the application
uses (:mod:`crm.clocks.services`). A feature below appeals: it imports no feature."""
