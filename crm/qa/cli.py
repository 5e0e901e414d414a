"""``crm qa …``: the automatic checks recomputed from stored transcripts (crm.qa.services does the work)."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from crm.errors import InvalidInput, NotFound
from crm.qa import services
from crm.timeutil import parse_day


@click.group("qa")
def qa_group():
    """Quality control: the automatic checks of calls."""


@qa_group.command("recheck")
@click.option("--call", "call_id", metavar="ID", help="recheck this call")
@click.option("--since", metavar="YYYY-MM-DD", help="recheck the calls made on or after this day (CRM_TIMEZONE)")
@click.option("--all", "every", is_flag=True, help="recheck every call")
@with_appcontext
def recheck_cmd(call_id: str | None, since: str | None, every: bool):
    """Recompute the automatic QA checks from the stored transcripts (no audio, no re-transcription)
    with the current configuration and call scripts, and store them as the transcription job does.
    Calls without a transcript or without the citizen's QA consent are skipped. Prints how many calls
    were rechecked (and how many of them changed) and skipped. Safe to repeat; exit 1 if any failed."""
    if sum((call_id is not None, since is not None, every)) != 1:
        raise click.UsageError("give exactly one of --call ID, --since YYYY-MM-DD, --all")
    try:
        day = parse_day(since, "since") if since is not None else None
    except InvalidInput as exc:
        raise click.BadParameter(str(exc.message), param_hint="--since")
    try:
        counts = services.recheck_calls(call_id=call_id, since=day)
    except NotFound:
        raise click.ClickException(f"no call {call_id}")
    rechecked = counts["changed"] + counts["unchanged"]
    skipped = counts["no_transcript"] + counts["no_consent"]
    line = (f"rechecked {rechecked} (changed {counts['changed']}), skipped {skipped} "
            f"(no transcript {counts['no_transcript']}, no QA consent {counts['no_consent']})")
    if counts["failed"]:
        line += f", failed {counts['failed']} (see the log)"
    click.echo(line)
    if counts["failed"]:
        raise SystemExit(1)
