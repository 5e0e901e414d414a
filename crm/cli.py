"""The ``crm`` console script: a Flask CLI group for the app (design.md, "Stable interfaces")."""
from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from crm.calls.jobs import model_dir as default_model_dir
from crm.calls.transcription import AudioDecodeError, transcribe
from crm.worker import status_cmd, worker_cmd


def _create_app():
    from crm import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def main():
    """Citizen hotline CRM (ЖКХ)."""


CONTROLLER_TEMPLATE = """
# The operator of personal data (оператор ПДн, the controller): its full name and address are
# rendered into every consent text, as a written consent must name them (152-ФЗ ст. 9 ч. 4).
# Until both are set, no consent or refusal can be recorded (the operator page shows a warning).
# Uncomment and fill in, e.g.:
# CRM_CONTROLLER_NAME = "ООО «Управляющая компания „Пример“», ИНН 0000000000"
# CRM_CONTROLLER_ADDRESS = "000000, г. Город, ул. Улица, д. 1"
"""

#: ``crm demo-data``: a clearly fictitious controller, appended to instance/config.py only when none is set.
DEMO_CONTROLLER = ("ООО «Демо-УК» (демонстрационные данные)",
                   "000000, г. Демонстрационный, ул. Примерная, д. 1 (демонстрационные данные)")


@main.command("init")
@with_appcontext
def init_cmd():
    """Create the instance folder, its config with a generated secret, and the keyring. Never overwrites."""
    from crm.security.keyring import init_keys

    instance = Path(current_app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    os.chmod(instance, 0o700)
    cfg = instance / "config.py"
    if not cfg.exists():
        fd = os.open(cfg, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("# Per-deployment settings; environment variables override them.\n"
                     f"SECRET_KEY = {secrets.token_hex(32)!r}\n" + CONTROLLER_TEMPLATE)
        click.echo(f"created {cfg}")
        current_app.config.from_pyfile(str(cfg))
    if init_keys(Path(current_app.config["CRM_KEYS_DIR"])):
        click.echo(f"created keyring in {current_app.config['CRM_KEYS_DIR']}")
    for sub in ("recordings", "models"):
        (instance / sub).mkdir(exist_ok=True)
    from crm.security import keystore

    keystore.ensure()  # the key store's tables (its own database; no Alembic history)
    click.echo(f"instance ready: {instance}")


@main.group("users")
def users_group():
    """Staff accounts."""


@users_group.command("create")
@click.argument("username")
@click.option("--role", required=True)
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@click.option("--full-name", default="")
@with_appcontext
def users_create(username, role, password_stdin, full_name):
    """Create a staff account."""
    from crm.users.services import UserError, create_user

    password = sys.stdin.readline().rstrip("\n") if password_stdin else click.prompt("Password", hide_input=True,
                                                                                      confirmation_prompt=True)
    try:
        user = create_user(username, role, password, full_name)
    except UserError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"created {user.username} ({user.role})")


@users_group.command("token")
@click.argument("username")
@with_appcontext
def users_token(username):
    """Print a new API token for USERNAME."""
    from crm.users.services import get_by_username, issue_token

    user = get_by_username(username)
    if user is None:
        raise click.ClickException(f"no user {username}")
    click.echo(issue_token(user))


main.add_command(worker_cmd)
main.add_command(status_cmd)


@main.group("redis")
def redis_group():
    """The embedded Redis server (used when REDIS_URL is not set)."""


@redis_group.command("start")
@with_appcontext
def redis_start():
    from crm import jobs

    click.echo(jobs.start_embedded(Path(current_app.instance_path)))


@redis_group.command("stop")
@with_appcontext
def redis_stop():
    from crm import jobs

    click.echo("stopped" if jobs.stop_embedded(Path(current_app.instance_path)) else "not running")


@main.command("transcribe")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="print the JSON object of design.md")
@click.option("--words", is_flag=True, help="include word timestamps in the JSON segments (implies --json)")
@click.option("--model-dir", type=click.Path(exists=True, file_okay=False),
              help="CTranslate2 Whisper model directory (default: CRM_WHISPER_MODEL, else Whisper base "
                   "assembled from its PyPI packages in the instance's models/)")
@click.option("--language", help="language of the call (default: CRM_LANGUAGE)")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads (default: CRM_WHISPER_THREADS)")
@click.option("--channel-roles", help="speaker role of each channel, comma separated "
                                      "(default: CRM_CHANNEL_ROLES, operator,citizen)")
@with_appcontext
def transcribe_cmd(file, as_json, words, model_dir, language, threads, channel_roles):
    """Transcribe FILE synchronously with the same pipeline as the worker.

    Undecodable input exits with status 2; with --json (or --words) its error is printed on stderr as
    ``{"error": {"code", "message", "message_ru"}}``.
    """
    cfg = current_app.config
    roles = (tuple(r.strip() for r in channel_roles.split(",")) if channel_roles
             else tuple(cfg["CRM_CHANNEL_ROLES"]))
    as_json = as_json or words
    try:
        result = transcribe(Path(file), model_dir=Path(model_dir) if model_dir else default_model_dir(current_app),
                            language=language or cfg["CRM_LANGUAGE"], channel_roles=roles,
                            cpu_threads=threads or cfg["CRM_WHISPER_THREADS"])
    except AudioDecodeError as exc:
        if as_json:
            click.echo(json.dumps({"error": exc.to_dict()}, ensure_ascii=False), err=True)
        else:
            click.echo(f"Error: {exc.code}: {exc}", err=True)
        sys.exit(2)
    if as_json:
        out = result.to_json()
        if words:
            out["segments"] = result.segments
        click.echo(json.dumps(out, ensure_ascii=False))
    else:
        for s in result.segments:
            click.echo(f"[{s['start']:7.2f}–{s['end']:7.2f}] {s['speaker']:>8}: {s['text']}")


@main.group("audit")
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
    from crm.security import audit, checkpoints

    pub = checkpoints.load_public_key(Path(public_key)) if public_key else None
    if pub is not None and not checkpoint_dir:
        checkpoint_dir = current_app.config["CRM_AUDIT_CHECKPOINT_DIR"]
    if archive:
        with open(archive, encoding="utf-8") as fh:
            count, bad, message, info = audit.verify_lines(fh)
        if bad is not None:
            _fail(f"archive {archive}: first bad entry {bad} (after {count} good entries): {message}")
        click.echo(f"ok: archive holds entries {info['first']}–{info['last']} ({count}), chain intact")
        if checkpoint_dir:
            rep, lines = checkpoints.check_file(Path(checkpoint_dir), pub)
            for note in rep.notes:
                click.echo(f"note: {note}")
            if not rep.ok:
                _fail("; ".join(rep.problems))
            for line in lines:
                d = line.data
                if line.kind == "checkpoint" and d["seq"] in info["hashes"] and info["hashes"][d["seq"]] != d["hash"]:
                    _fail(f"entry {d['seq']}: the archive's hash differs from checkpoint line {line.number}")
            matched = sum(1 for ln in lines if ln.kind == "checkpoint" and ln.data["seq"] in info["hashes"])
            click.echo(f"ok: {matched} checkpoints fall in the archive and match it")
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
    from crm.security import checkpoints

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
    from crm.security import checkpoints

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
    from crm.security import audit, checkpoints

    key = checkpoints.load_private_key(Path(private_key), _passphrase(passphrase_stdin))
    directory = Path(checkpoint_dir or current_app.config["CRM_AUDIT_CHECKPOINT_DIR"])
    count, bad, message = audit.verify()
    if bad is not None:
        _fail(f"not attesting: after {count} good entries: {message}")
    rep = checkpoints.verify_checkpoints(directory)
    for note in rep.notes:
        click.echo(f"note: {note}")
    if not rep.ok:
        _fail("not attesting: " + "; ".join(rep.problems))
    try:
        data = checkpoints.attest(directory, key, by=by)
    except checkpoints.CheckpointError as exc:
        raise click.ClickException(str(exc))
    audit.record("audit.attest", detail=f"line={data['n']} checkpoint={data['checkpoint']} seq={data['seq']} "
                 f"dpo_key={checkpoints.fingerprint(key)}", actor=audit.system_actor(f"attest:{by}"[:60]))
    from crm.db import db

    db.session.commit()
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
    import hashlib
    from datetime import timedelta

    from crm.db import db, utcnow
    from crm.errors import InvalidInput
    from crm.security import audit
    from crm.timeutil import day_start, parse_day

    try:
        start = day_start(parse_day(first, "from")) if first else None
        end = day_start(parse_day(last, "to") + timedelta(days=1)) if last else None
    except InvalidInput as exc:
        raise click.ClickException(str(exc))
    rng = audit.seq_range(start, end)
    if rng is None:
        raise click.ClickException("no entries in that period")
    digest = hashlib.sha256()
    n = 0
    tmp = Path(file).with_name(Path(file).name + ".part")
    with open(tmp, "w", encoding="utf-8") as fh:
        for line in audit.export_lines(*rng):
            data = line + "\n"
            fh.write(data)
            digest.update(data.encode("utf-8"))
            n += 1
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, file)
    audit.record("audit.export", detail=f"seq={rng[0]}-{rng[1]} entries={n} sha256={digest.hexdigest()}",
                 actor=audit.system_actor("audit_export"))
    db.session.commit()
    keep = current_app.config["CRM_AUDIT_RETENTION_DAYS"]
    click.echo(f"exported entries {rng[0]}–{rng[1]} ({n}) to {file}, sha256 {digest.hexdigest()}\n"
               f"retention: entries are kept at least {keep} days (before {(utcnow() - timedelta(days=keep)).date()} "
               f"they may be archived); nothing in the app deletes them")


@audit_group.command("scan")
@with_appcontext
def audit_scan():
    """Look for unusual access now (the worker does it every hour); alerts appear on the DPO's page."""
    from crm.security import alerts

    counts = alerts.scan()
    click.echo(f"alerts: {counts['new']} new, {counts['updated']} updated")


@main.group("keys")
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
    import time

    from crm.security.rotation import RotationError, run_rotation, start_rotation

    try:
        info = start_rotation(enqueue=not inline, new_key=not no_new_key)
    except RotationError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"active key {info['kek_id']}; rotation {info['rotation_id']}: {info['total']} data keys to re-wrap")
    if inline:
        res = run_rotation(info["rotation_id"])
        click.echo(f"re-wrapped {res['done']} data keys; finished")
        return
    click.echo(f"job {info['job_id']} queued (a worker runs it: `crm worker`)")
    if wait:
        from crm.security import keystore

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
    from crm import jobs
    from crm.security.rotation import run_rotation

    if inline:
        res = run_rotation(rotation_id)
        click.echo(f"rotation {rotation_id}: {res['done']}/{res['total']} finished={res['finished']}")
    else:
        job = jobs.enqueue("crm.security.rotation.rewrap_job", rotation_id)
        click.echo(f"job {job.id} queued")


@keys_group.command("status")
@with_appcontext
def keys_status():
    """KEKs (id, data keys each wraps), rotations with progress, blind-index states, erasures
    whose data key is not yet deleted. Never prints key material."""
    from crm.security import keystore, shredding
    from crm.security.crypto import keyring
    from crm.security.rotation import index_status

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
    for s in index_status():
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
    from crm.security.rotation import RotationError, retire

    try:
        path = retire(kek_id)
    except RotationError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"retired {kek_id}: moved to {path}; destroy it once the key store's backups from before the "
               "rotation have expired (30 days)")


_INDEX_STEPS = ("start", "backfill", "switch", "drop")
_INDEX_NAMES = ("phone", "surname", "name_building", "building")  # crm.security.rotation.ROTATABLE


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
    from crm.security import rotation

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
    from datetime import timedelta

    from crm.security import keystore, shredding

    rows = keystore.orphans(shredding.known_owners, timedelta(hours=older_than_hours))
    if dry_run:
        click.echo(f"{len(rows)} orphan data keys")
        return
    click.echo(f"deleted {keystore.delete_orphans(rows)} orphan data keys")


@keys_group.command("complete-erasures")
@with_appcontext
def keys_complete_erasures():
    """Delete the data keys of erasures whose key-store step failed."""
    from crm.security import shredding

    click.echo(f"completed {shredding.complete_pending()} erasures")


def _set_demo_controller() -> None:
    """Append the fictitious demo controller to instance/config.py (a demo instance has no real
    one; consents must not be recorded without it) and use it in this process."""
    cfg = Path(current_app.instance_path) / "config.py"
    name, address = DEMO_CONTROLLER
    if cfg.exists():
        with open(cfg, "a", encoding="utf-8") as fh:
            fh.write("\n# Added by `crm demo-data`: a FICTITIOUS operator of personal data for the demo.\n"
                     "# Replace both with the real operator's name and address before real use.\n"
                     f"CRM_CONTROLLER_NAME = {name!r}\nCRM_CONTROLLER_ADDRESS = {address!r}\n")
        click.echo(f"  demo controller (fictitious) written to {cfg}: {name}")
    current_app.config["CRM_CONTROLLER_NAME"] = name
    current_app.config["CRM_CONTROLLER_ADDRESS"] = address


@main.command("demo-data")
@click.option("--no-call", is_flag=True, help="skip uploading the demo call recording")
@with_appcontext
def demo_data(no_call):
    """Create demo users (one per role), demo citizens and appeals, and one real call (idempotent)."""
    from crm.consent.services import controller_configured
    from crm.demo import load_demo

    if not controller_configured():
        _set_demo_controller()
    for line in load_demo(with_call=not no_call):
        click.echo(line)


if __name__ == "__main__":
    main()
