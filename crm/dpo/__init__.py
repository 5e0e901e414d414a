"""The data-protection officer's package: the access-log viewer, the per-citizen access report,
unusual-access alerts, data-subject requests, the purposes register, destruction acts and retention
pages. It reads what the lower layers record; the DPO audits, and does not browse appeal contents."""
