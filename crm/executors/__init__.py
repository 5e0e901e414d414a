"""The executors directory (issue 14, point 3): the services appeals are handed over to — the
emergency dispatch (АДС), the management company, utility suppliers (РСО), contractors — with their
contacts and the topics they serve. Other features reach it only through :mod:`crm.executors.services`."""
