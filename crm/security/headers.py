"""The headers every answer of the application carries (crm.app adds them after each request;
crm.telephony.inbox's fast path, which answers without Flask's request cycle, sends the same)."""
from __future__ import annotations

#: Name and value of each header, as ``setdefault`` puts them (a view may set its own first).
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Content-Security-Policy", "default-src 'self'; media-src 'self' blob:; img-src 'self' data:; "
                                "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"),
)
