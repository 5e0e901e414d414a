"""``crm telephony …``: import Asterisk's queue_log, simulate an hour of calls."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click
from flask.cli import with_appcontext

from crm.telephony import queuelog, services, simulate
from crm.users import services as users


@click.group("telephony")
def telephony_group():
    """Telephony: the PBX's calls without a webhook, and a simulator."""


@telephony_group.command("import-queue-log")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", default="queue_log", show_default=True, help="names the PBX: call ids become SOURCE:callid")
@with_appcontext
def import_queue_log(file: Path, source: str):
    """Import Asterisk's queue_log FILE (ENTERQUEUE, CONNECT, COMPLETECALLER/AGENT, ABANDON,
    EXITWITHTIMEOUT, TRANSFER, PAUSE/UNPAUSE, ADDMEMBER/REMOVEMEMBER …) as call events. Idempotent:
    lines imported before are counted as duplicates. Exit 1 when the file is not UTF-8."""
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{file}: not UTF-8; nothing imported")
    result = queuelog.import_lines(text.splitlines(), source=source[:30])
    click.echo(f"events {result.events}, duplicates {result.duplicates}, agent states {result.agent_states}, "
               f"skipped {result.skipped}, refused {len(result.refused)}")
    for line, reason in result.refused:
        click.echo(f"  line {line}: {reason}")


@telephony_group.command("simulate")
@click.option("--calls", default=120, show_default=True, help="calls in the hour, on average")
@click.option("--agents", default=5, show_default=True)
@click.option("--seed", default=1, show_default=True)
@click.option("--url", default=None, help="post to this webhook (…/api/v1/telephony/events) instead of the database")
@click.option("--secret", envvar="CRM_TELEPHONY_SECRET", default=None, help="the webhook's secret (with --url)")
@click.option("--speed", default=60.0, show_default=True, help="with --url: how many times faster than real time")
@with_appcontext
def simulate_cmd(calls: int, agents: int, seed: int, url: str | None, secret: str | None, speed: float):
    """Replay a simulated hour of a call centre (bursts, abandons, short abandons, transfers).

    The calls are answered by the active operator accounts (up to --agents of them), or by
    ``operator1`` … when there are none (answers without an operator: no such accounts).

    Without --url: the hour that ends now is written straight through the services (the same code as
    the webhook after its signature and time checks); calls still going on at the end stay so. With --url: each event is signed and posted to a
    running webhook when its time comes, SPEED times faster, stamped with the moment it is sent."""
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    # the operators' own user names (an answer by a name that is no staff account has no operator)
    names = [u.username for u in users.active_with_roles("operator")][:agents] or None
    events = simulate.hour(start, calls=calls, agents=len(names) if names else agents, seed=seed, names=names)
    if url is None:
        now = datetime.now(timezone.utc)
        events = [e for e in events if e.at <= now]  # calls still going on are left so
        for e in events:
            services.ingest(services.Event(event_id=e.event_id, type=e.type, call_id=e.call_id, at=e.at,
                                           from_=e.from_, to=e.to, queue=e.queue, user=e.user, cause=e.cause,
                                           source="simulator"))
        click.echo(f"{len(events)} events of {len({e.call_id for e in events})} calls written")
        return
    if not secret:
        raise click.ClickException("--secret (or CRM_TELEPHONY_SECRET) is needed with --url")
    t0 = time.monotonic()
    refused = 0
    for e in events:
        due = (e.at - start).total_seconds() / max(speed, 0.001)
        pause = due - (time.monotonic() - t0)
        if pause > 0:
            time.sleep(pause)
        raw = json.dumps(e.as_json(datetime.now(timezone.utc))).encode()
        sig = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        req = urllib.request.Request(url, data=raw, method="POST",
                                     headers={"Content-Type": "application/json", "X-CRM-Signature": sig})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                resp.read()
        except Exception as exc:  # report and go on: a demo should not stop at one refused event
            refused += 1
            click.echo(f"  {e.event_id}: {exc}", err=True)
    click.echo(f"{len(events)} events posted, {refused} refused")
