"""Where a form may send the browser next: only to a path on this site (no open redirect)."""
from __future__ import annotations

from urllib.parse import urlsplit


def local_target(target: str | None, default: str) -> str:
    """``target`` if it is a path on this site (``/appeals/…?tab=2``), else ``default``.

    Refused: empty values, absolute URLs (``https://evil.example/``), scheme-relative ones
    (``//evil.example``), and backslashes and control characters, which browsers read as slashes
    or strip (``/\\evil.example`` opens evil.example; OWASP "Unvalidated Redirects and Forwards"
    cheat sheet)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target
