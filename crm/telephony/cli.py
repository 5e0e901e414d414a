"""``crm telephony …``: import Asterisk's queue_log, simulate an hour of calls."""
from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import click
from flask import current_app
from flask.cli import with_appcontext

from crm.telephony import inbox, queuelog, services, simulate
from crm.users import services as users


#: Hosts ``simulate --url`` posts to without --allow-remote.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


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


@telephony_group.command("inbox")
@click.option("--requeue-failed", is_flag=True, help="move the events that could not be built back to the inbox")
@with_appcontext
def inbox_cmd(requeue_failed: bool):
    """The PBX events waiting to be built (crm.telephony.inbox): waiting, being built, failed. With
    --requeue-failed (after mending the cause, e.g. a retired KEK put back) they are queued again."""
    if requeue_failed:
        click.echo(f"requeued {inbox.requeue_failed()} event(s)")
    b = inbox.backlog()
    click.echo(f"telephony inbox: {b['waiting']} waiting, {b['processing']} being built, {b['failed']} failed")


@telephony_group.command("simulate")
@click.option("--calls", default=120, show_default=True, help="calls in the hour, on average")
@click.option("--agents", default=5, show_default=True)
@click.option("--seed", default=1, show_default=True)
@click.option("--url", default=None, help="post to this webhook (…/api/v1/telephony/events) instead of the database")
@click.option("--secret", default=None,
              help="the webhook's secret (with --url; default: this instance's CRM_TELEPHONY_SECRET, as the app reads it)")
@click.option("--source", default=None, help="with --url: sign as this source of CRM_TELEPHONY_SECRETS (X-CRM-Source)")
@click.option("--speed", default=60.0, show_default=True, help="with --url: how many times faster than real time")
@click.option("--allow-remote", is_flag=True, help="with --url: allow a webhook that is not on this machine")
@with_appcontext
def simulate_cmd(calls: int, agents: int, seed: int, url: str | None, secret: str | None, source: str | None,
                 speed: float, allow_remote: bool):
    """Replay a simulated hour of a call centre (bursts, abandons, short abandons, transfers).

    The calls are answered by the active operator accounts (up to --agents of them), or by
    ``operator1`` … when there are none (answers without an operator: no such accounts).

    Without --url: the hour that ends now is written straight through the services (the same code as
    the webhook after its signature and time checks); calls still going on at the end stay so. With --url: each
    event is signed and posted to a running webhook when its time comes, SPEED times faster, stamped with
    the moment it is sent; a webhook off this machine needs --allow-remote (the simulated calls would land
    in someone's real queue). The callers are numbers no operator holds (+7 997 000-xx-xx, crm.telephony.simulate). Exit status 1 when
    the webhook refused any event (a wrong secret stops at the first refusal)."""
    if url is not None:
        host = (urlsplit(url).hostname or "").lower()
        if host not in LOCAL_HOSTS and not allow_remote:
            raise click.ClickException(f"{url}: not a webhook on this machine; the simulated calls would reach a "
                                       "real queue — add --allow-remote if that is what you mean")
    start = datetime.now(timezone.utc) - timedelta(hours=1)
    # the operators' own user names (an answer by a name that is no staff account has no operator); the
    # read's transaction ends there: with --url this process posts for minutes to an app that, on
    # SQLite, could not write while it held one (every transaction takes the write lock, crm.db)
    names = users.active_usernames("operator")[:agents] or None
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
    cfg = current_app.config
    if not secret:
        secret = (cfg["CRM_TELEPHONY_SECRETS"] or {}).get(source) if source else cfg["CRM_TELEPHONY_SECRET"]
    if not secret:
        raise click.ClickException("no secret: give --secret, or set CRM_TELEPHONY_SECRET (or the source's entry of "
                                   "CRM_TELEPHONY_SECRETS) in the instance config or the environment")
    t0 = time.monotonic()
    refused = posted = 0
    for e in events:
        due = (e.at - start).total_seconds() / max(speed, 0.001)
        pause = due - (time.monotonic() - t0)
        if pause > 0:
            time.sleep(pause)
        raw = json.dumps(e.as_json(datetime.now(timezone.utc))).encode()
        sig = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-CRM-Signature": sig, **({"X-CRM-Source": source}
                                                                                   if source else {})}
        req = urllib.request.Request(url, data=raw, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                resp.read()
            posted += 1
        except urllib.error.HTTPError as exc:
            refused += 1
            detail = exc.read().decode("utf-8", "replace")[:300]
            click.echo(f"  {e.event_id}: HTTP {exc.code} {detail}", err=True)
            if exc.code in (401, 503):  # a wrong or missing secret: every event would be refused
                raise click.ClickException(f"the webhook refused the events (HTTP {exc.code}): check the secret "
                                           f"(--secret, CRM_TELEPHONY_SECRET); {posted} posted before")
        except OSError as exc:  # not reachable, timed out: go on, the demo may recover
            refused += 1
            click.echo(f"  {e.event_id}: {exc}", err=True)
    click.echo(f"{posted} events posted, {refused} refused")
    if refused:
        raise SystemExit(1)
