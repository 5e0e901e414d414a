"""``crm consent …``: retention on demand (crm.consent.retention does the work)."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from crm.consent import retention


@click.group("consent")
def consent_group():
    """Consents and retention."""


@consent_group.command("retention")
@with_appcontext
def retention_cmd():
    """Run retention now (as the periodic job does) and print the counts."""
    row = retention.run()
    click.echo(f"retention run {row.id}: erased {row.erased}, de-identified {row.deidentified}, pending {row.pending}")
