"""``crm audit scan``: look for unusual access now. The command joins the ``crm audit`` group of
:mod:`crm.security.cli` in :mod:`crm.cli` (the security layer does not know the DPO's package)."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from crm.dpo import alerts


@click.command("scan")
@with_appcontext
def audit_scan():
    """Look for unusual access now (the worker does it every hour); alerts appear on the DPO's page."""
    counts = alerts.scan()
    click.echo(f"alerts: {counts['new']} new, {counts['updated']} updated")
