"""``crm audit …`` (the access log: verify, checkpoints, the DPO's keys, export; ``scan`` for alerts is
added by :mod:`crm.dpo.cli`) and
``crm keys …`` (KEK and blind-index key rotation, the key store). The work is done by
crm.security's services; commands parse options and print."""
from __future__ import annotations

import sys
import time
from datetime import timedelta
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from crm import jobs
from crm.db import utcnow
from crm.errors import InvalidInput
from crm.security import archive as archive_, audit, blind_index, checkpoints, keystore, rotation, shredding
from crm.security.crypto import keyring
from crm.timeutil import day_start, parse_day


@click.group("audit")
def audit_group():
    """The access log: verify, checkpoints, the DPO's keys, export, alerts."""


def _fail(message: str) -> None:
    click.echo(f"FAILED: {message}", err=True)
    sys.exit(1)


@audit_group.command("verify")
@click.option("--checkpoints", "checkpoint_dir", type=click.Path(file_okay=False),
              help="also check the signed checkpoints in DIR (default with --public-key: CRM_AUDIT_CHECKPOINT_DIR)")
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False),
              help="the DPO's public key (crm audit keygen): checkpoints must be attested with it")
@click.option("--archive", type=click.Path(exists=True, dir_okay=False),
              help="verify an export made by `crm audit export` instead of the database")
@click.option("--older-copy", is_flag=True,
              help="the checkpoint directory is a copy taken earlier: entries after it are noted, not failed")
@with_appcontext
def audit_verify(checkpoint_dir, public_key, archive, older_copy):
    """Check the hash chain (and the checkpoints); exit 1 naming the first bad entry."""
    pub = checkpoints.load_public_key(Path(public_key)) if public_key else None
    if pub is not None and not checkpoint_dir:
        checkpoint_dir = current_app.config["CRM_AUDIT_CHECKPOINT_DIR"]
    if archive:
        rep = archive_.verify_archive(Path(archive), Path(checkpoint_dir) if checkpoint_dir else None, pub)
        if rep.first is not None:
            click.echo(f"ok: archive holds entries {rep.first}–{rep.last} ({rep.count}), chain intact")
        for note in rep.notes:
            click.echo(f"note: {note}")
        if rep.problem:
            _fail(rep.problem)
        if rep.matched is not None:
            click.echo(f"ok: {rep.matched} checkpoints fall in the archive and match it")
        return
    count, bad, message = audit.verify()
    if bad is not None:
        _fail(f"first bad entry {bad} (after {count} good entries): {message}")
    click.echo(f"ok: {count} entries, chain intact")
    if not checkpoint_dir:
        default_dir = Path(current_app.config["CRM_AUDIT_CHECKPOINT_DIR"])
        n = sum(1 for _ in (default_dir / checkpoints.FILE_NAME).open(encoding="utf-8")) \
            if (default_dir / checkpoints.FILE_NAME).is_file() else 0
        click.echo(f"note: checkpoints not checked, so a cut-off tail would go unseen: {n} lines in {default_dir} "
                   f"(the worker writes one at start and every {current_app.config['CRM_AUDIT_CHECKPOINT_EVERY_S']} s); "
                   f"run `crm audit verify --checkpoints {default_dir}` (and --public-key FILE once the DPO attests)")
    if checkpoint_dir:
        rep = checkpoints.verify_checkpoints(Path(checkpoint_dir), pub, older_copy=older_copy)
        for note in rep.notes:
            click.echo(f"note: {note}")
        if not rep.ok:
            first = f"first bad entry {rep.first_bad_seq}: " if rep.first_bad_seq else ""
            _fail(first + "; ".join(rep.problems))
        last = rep.last or {}
        anchored = (f"attested by the DPO key {checkpoints.fingerprint(pub)} through line {rep.anchored_through}"
                    if pub is not None else "not checked against the DPO's key (no --public-key)")
        click.echo(f"ok: {rep.checkpoints} checkpoints, newest entry {last.get('seq')} at {last.get('at')}, all in "
                   f"the chain; {rep.attestations} attestations, {anchored}")


@audit_group.command("checkpoint")
@click.option("--force", is_flag=True, help="write one even if nothing was logged since the last")
@with_appcontext
def audit_checkpoint(force):
    """Publish a signed checkpoint of the chain head now (the worker does it every few minutes)."""
    data = checkpoints.write_checkpoint(force=force)
    if data is None:
        click.echo("nothing new since the last checkpoint")
        return
    click.echo(f"checkpoint line {data['n']}: entry {data['seq']} {data['hash']}"
               + (f" (new key chain: {data['reason']})" if data.get("genesis") else "")
               + f" -> {Path(current_app.config['CRM_AUDIT_CHECKPOINT_DIR']) / checkpoints.FILE_NAME}")


def _passphrase(use_stdin: bool) -> bytes | None:
    if not use_stdin:
        return None
    value = sys.stdin.readline().rstrip("\n")
    return value.encode() if value else None


@audit_group.command("keygen")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="directory for the key pair")
@click.option("--passphrase-stdin", is_flag=True, help="encrypt the private key with a passphrase read from stdin")
def audit_keygen(out, passphrase_stdin):
    """Make the DPO's Ed25519 key pair. Keep the private key off the app servers (a token, an
    offline machine); give the public key to whoever verifies."""
    try:
        priv, pub = checkpoints.keygen(Path(out), _passphrase(passphrase_stdin))
    except checkpoints.CheckpointError as exc:
        raise click.ClickException(str(exc))
    key = checkpoints.load_public_key(pub)
    click.echo(f"private key: {priv} (keep it with the DPO)\npublic key:  {pub}\nfingerprint: "
               f"{checkpoints.fingerprint(key)}")


@audit_group.command("attest")
@click.option("--private-key", required=True, type=click.Path(exists=True, dir_okay=False),
              help="the DPO's private key (crm audit keygen)")
@click.option("--checkpoints", "checkpoint_dir", type=click.Path(file_okay=False),
              help="checkpoint directory (default CRM_AUDIT_CHECKPOINT_DIR)")
@click.option("--passphrase-stdin", is_flag=True, help="read the private key's passphrase from stdin")
@click.option("--by", default="", help="who attests (printed in the line)")
@with_appcontext
def audit_attest(private_key, checkpoint_dir, passphrase_stdin, by):
    """Verify the chain and the checkpoints, then append the DPO's signed attestation of the newest
    checkpoint. Run it from a machine the app's administrators do not control."""
    key = checkpoints.load_private_key(Path(private_key), _passphrase(passphrase_stdin))
    directory = Path(checkpoint_dir or current_app.config["CRM_AUDIT_CHECKPOINT_DIR"])
    try:
        data, notes = archive_.attest_verified(directory, key, by=by)
    except checkpoints.CheckpointError as exc:
        if str(exc).startswith("not attesting"):
            _fail(str(exc))
        raise click.ClickException(str(exc))
    for note in notes:
        click.echo(f"note: {note}")
    click.echo(f"attested checkpoint line {data['checkpoint']} (entry {data['seq']}) with key "
               f"{checkpoints.fingerprint(key)} as line {data['n']}")


@audit_group.command("export")
@click.option("--from", "first", default=None, help="first day, YYYY-MM-DD (CRM_TIMEZONE); default: the beginning")
@click.option("--to", "last", default=None, help="last day, inclusive; default: today")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@with_appcontext
def audit_export(first, last, file):
    """Export entries as JSON lines with their hashes, for archiving; the file verifies on its own
    (`crm audit verify --archive FILE`). Entries are kept at least CRM_AUDIT_RETENTION_DAYS."""
    try:
        start = day_start(parse_day(first, "from")) if first else None
        end = day_start(parse_day(last, "to") + timedelta(days=1)) if last else None
        out = archive_.export(Path(file), start, end)
    except (InvalidInput, LookupError) as exc:
        raise click.ClickException(str(exc))
    keep = current_app.config["CRM_AUDIT_RETENTION_DAYS"]
    click.echo(f"exported entries {out['first']}–{out['last']} ({out['count']}) to {file}, sha256 {out['sha256']}\n"
               f"retention: entries are kept at least {keep} days (before {(utcnow() - timedelta(days=keep)).date()} "
               f"they may be archived); nothing in the app deletes them")


@click.group("keys")
def keys_group():
    """Key management: KEK rotation, blind-index key rotation, the key store."""


def _fmt(dt) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S UTC") if dt else "—"


@keys_group.command("rotate")
@click.option("--inline", is_flag=True, help="re-wrap in this process instead of the background job")
@click.option("--wait", is_flag=True, help="after enqueueing, show progress until the job finishes")
@click.option("--no-new-key", is_flag=True, help="re-wrap under the current active KEK (keys from the environment)")
@with_appcontext
def keys_rotate(inline, wait, no_new_key):
    """Add and promote a new KEK, then re-wrap every data key under it in a resumable background
    job (RQ). The app keeps serving; `crm keys status` shows progress."""
    try:
        info = rotation.start_rotation(enqueue=not inline, new_key=not no_new_key)
    except rotation.RotationError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"active key {info['kek_id']}; rotation {info['rotation_id']}: {info['total']} data keys to re-wrap")
    if inline:
        res = rotation.run_rotation(info["rotation_id"])
        click.echo(f"re-wrapped {res['done']} data keys; finished")
        return
    click.echo(f"job {info['job_id']} queued (a worker runs it: `crm worker`)")
    if wait:
        while True:
            rot = next(r for r in keystore.rotations(50) if r.id == info["rotation_id"])
            click.echo(f"  {rot.done}/{rot.total}" + (" finished" if rot.finished_at else ""))
            if rot.finished_at:
                return
            time.sleep(2)


@keys_group.command("resume")
@click.argument("rotation_id", type=int)
@click.option("--inline", is_flag=True, help="run in this process instead of enqueueing")
@with_appcontext
def keys_resume(rotation_id, inline):
    """Continue an unfinished rotation (after a crashed or killed job)."""
    if inline:
        res = rotation.run_rotation(rotation_id)
        click.echo(f"rotation {rotation_id}: {res['done']}/{res['total']} finished={res['finished']}")
    else:
        job = jobs.enqueue(rotation.rewrap_job, rotation_id)
        click.echo(f"job {job.id} queued")


@keys_group.command("status")
@with_appcontext
def keys_status():
    """KEKs (id, data keys each wraps), rotations with progress, blind-index states, erasures
    whose data key is not yet deleted. Never prints key material."""
    ring = keyring(force_reload=True)
    st = keystore.status()
    click.echo(f"key store: {st['url']}")
    click.echo("key-encryption keys:")
    for k in st["keks"]:
        mark = " (active)" if k["id"] == ring.active_id else ""
        where = "in keyring" if k["id"] in ring.keks else "NOT IN KEYRING"
        click.echo(f"  {k['id']}{mark}: {k['data_keys']} data keys, {where}, created {_fmt(k['created_at'])}"
                   + (f", retired {_fmt(k['retired_at'])}" if k["retired_at"] else ""))
    for kid, n in st["unknown_keks"].items():
        click.echo(f"  {kid}: {n} data keys, no key store record")
    click.echo("rotations:")
    for r in st["rotations"] or []:
        state = f"finished {_fmt(r['finished_at'])}" if r["finished_at"] else "running or interrupted"
        click.echo(f"  #{r['id']} to {r['target_kek_id']}: started {_fmt(r['started_at'])}, "
                   f"{r['done']}/{r['total']} done, {state}")
    if not st["rotations"]:
        click.echo("  none")
    click.echo("blind indexes:")
    for s in rotation.index_status():
        line = f"  {s['index']}: slot a={s['key_a']} b={s['key_b']}, reads slot {s['read_slot']}"
        if s["backfill"]:
            b = s["backfill"]
            line += (f"; backfill of slot {b['slot']}: {b['done']}/{b['total']}"
                     + (f", finished {_fmt(b['finished_at'])}" if b["finished_at"] else ""))
        click.echo(line)
    pending = shredding.pending()
    if pending:
        click.echo(f"erasures waiting for their data key to be deleted: {len(pending)} "
                   "(`crm keys complete-erasures`)")


@keys_group.command("retire")
@click.argument("kek_id")
@with_appcontext
def keys_retire(kek_id):
    """Retire KEK KEK_ID: refused while it is active or any data key uses it."""
    try:
        path = rotation.retire(kek_id)
    except rotation.RotationError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"retired {kek_id}: moved to {path}; destroy it once the key store's backups from before the "
               "rotation have expired (30 days)")


_INDEX_STEPS = ("start", "backfill", "switch", "drop")
# every rotatable index (rotation.ROTATABLE is filled at start-up by crm.citizens.personal_data)
_INDEX_NAMES = tuple(blind_index.SLOTS)  # phone, surname, name_building, building


@keys_group.command("index")
@click.argument("first", metavar="NAME|STEP")
@click.argument("second", metavar="[STEP|NAME]", required=False)
@click.option("--inline", is_flag=True, help="start: backfill in this process instead of the background job")
@with_appcontext
def keys_index(first, second, inline):
    """Rotate the key of blind index NAME (phone, surname, name_building or building; default phone),
    given as `index NAME STEP` or `index STEP [NAME]`. Steps: start (new key, write both columns,
    backfill job), backfill (run or resume it here), switch (lookups read the new column), drop
    (clear the old column; for building also re-key appeals)."""
    step, name = (first, second or "phone") if first in _INDEX_STEPS else (second, first)
    if step not in _INDEX_STEPS:
        raise click.UsageError(f"step must be one of {', '.join(_INDEX_STEPS)}")
    if name not in _INDEX_NAMES:
        raise click.UsageError(f"unknown blind index {name!r}; one of {', '.join(_INDEX_NAMES)}")
    try:
        if step == "start":
            info = rotation.index_start(name, enqueue=not inline)
            click.echo(f"blind index {name}: key {info['key']} fills slot {info['slot']}; writers fill both columns")
            if inline:
                res = rotation.run_index_backfill(name)
                click.echo(f"backfilled {res['done']} citizens")
            else:
                click.echo(f"backfill job {info['job_id']} queued")
        elif step == "backfill":
            res = rotation.run_index_backfill(name)
            click.echo(f"backfilled {res['done']}/{res['total']} citizens")
        elif step == "switch":
            click.echo(f"blind index {name}: lookups read slot {rotation.index_switch(name)}")
        else:
            old = rotation.index_drop(name)
            click.echo(f"blind index {name}: old column cleared; root key version {old} no longer used by it")
    except rotation.RotationError as exc:
        raise click.ClickException(str(exc))


@keys_group.command("gc")
@click.option("--older-than-hours", default=1.0, show_default=True)
@click.option("--dry-run", is_flag=True)
@with_appcontext
def keys_gc(older_than_hours, dry_run):
    """Delete orphan data keys: made in the key store for a row whose main-database commit then
    failed (harmless, see crm/security/keystore.py)."""
    rows = keystore.orphans(shredding.known_owners, timedelta(hours=older_than_hours))
    if dry_run:
        click.echo(f"{len(rows)} orphan data keys")
        return
    click.echo(f"deleted {keystore.delete_orphans(rows)} orphan data keys")


@keys_group.command("complete-erasures")
@with_appcontext
def keys_complete_erasures():
    """Delete the data keys of erasures whose key-store step failed."""
    click.echo(f"completed {shredding.complete_pending()} erasures")
