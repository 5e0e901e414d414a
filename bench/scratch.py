"""Scratch PostgreSQL databases for one bench run, on the server of ``DATABASE_URL``."""
from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def postgres_databases(*prefixes: str) -> Iterator[list[str] | None]:
    """Create one empty database per prefix (``<prefix>_<6 hex>``) on ``DATABASE_URL``'s server and
    yield their URLs (``postgresql+psycopg://``); drop them afterwards, ending their connections first.
    Yields None when ``DATABASE_URL`` is unset (the bench then measures SQLite only)."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        yield None
        return
    import sqlalchemy as sa

    base = sa.make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    names = [f"{prefix}_{secrets.token_hex(3)}" for prefix in prefixes or ("crm_bench",)]
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        for name in names:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield [base.set(database=name).render_as_string(hide_password=False) for name in names]
    finally:
        with admin.connect() as c:
            for name in names:
                c.execute(sa.text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname='{name}'"))
                c.execute(sa.text(f'DROP DATABASE "{name}"'))
        admin.dispose()
