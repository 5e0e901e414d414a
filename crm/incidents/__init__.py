"""Outages and mass incidents (issue 15, point 1): a hot-water cut in twelve buildings is one incident,
not dozens of unlinked appeals.

An incident covers buildings of the register (:mod:`crm.buildings`), or a whole street or district
(matched on the normalised address), a period, a service (the appeals' topic codes), planned or
emergency, and the text operators read to callers. The intake page shows the active incident of the
caller's house before the operator types; the call is attached to the incident (counted) or an
appeal is opened linked to it. Closing an incident fires ``incident.closed``: :mod:`crm.appeals`
resolves the linked appeals with the closing text as the citizen's comment, so the status
notification reaches the citizens who consented. A surge of appeals on one house and service proposes
an incident to the supervisors (:mod:`crm.incidents.surge`); an outage longer than ПП РФ № 354
Appendix 1 permits is flagged for recalculation (:mod:`crm.incidents.catalog`).

Layer: below :mod:`crm.appeals` (which imports :mod:`crm.incidents.services`), above
:mod:`crm.buildings` and :mod:`crm.calls`. No personal data: links to appeals, calls and citizens
by id only."""
