"""Satisfaction surveys (CSAT) after an appeal is closed: a single-use link by SMS to citizens who consented to ``csat_survey``, a phone-sized public page, the answers in the KPIs."""
