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


def _create_app():
    from crm import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def main():
    """Citizen hotline CRM (ЖКХ)."""


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
                     f"SECRET_KEY = {secrets.token_hex(32)!r}\n")
        click.echo(f"created {cfg}")
        current_app.config.from_pyfile(str(cfg))
    if init_keys(Path(current_app.config["CRM_KEYS_DIR"])):
        click.echo(f"created keyring in {current_app.config['CRM_KEYS_DIR']}")
    for sub in ("recordings", "models"):
        (instance / sub).mkdir(exist_ok=True)
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


@main.command("worker")
@click.option("--burst", is_flag=True, help="exit when the queues are empty")
@with_appcontext
def worker_cmd(burst):
    """Run an RQ worker for the transcription and default queues.

    A non-forking worker: the Whisper model is loaded in this process on the first job and reused
    (CTranslate2 is not fork-safe, pitfalls.md). Started with RQ's scheduler so retries run."""
    from rq import SimpleWorker

    from crm import jobs
    from crm.calls.services import reconcile

    if not current_app.config.get("REDIS_URL"):
        jobs.start_embedded(Path(current_app.instance_path))
    conn = jobs.redis_connection()
    counts = reconcile()
    if any(counts.values()):
        click.echo(f"reconciled calls left by a crash: {counts}")
    from crm.calls.jobs import schedule_reconcile

    if not burst:
        schedule_reconcile()
    worker = SimpleWorker([jobs.queue(q) for q in jobs.QUEUES], connection=conn)
    worker.work(burst=burst, with_scheduler=True, logging_level="INFO")


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
@with_appcontext
def transcribe_cmd(file, as_json):
    """Transcribe FILE synchronously with the same pipeline as the worker."""
    from crm.calls.audio import AudioDecodeError
    from crm.calls.jobs import model_dir
    from crm.calls.transcriber import transcribe

    try:
        result = transcribe(Path(file), model_dir=model_dir(current_app), language=current_app.config["CRM_LANGUAGE"],
                            channel_roles=tuple(current_app.config["CRM_CHANNEL_ROLES"]),
                            cpu_threads=current_app.config["CRM_WHISPER_THREADS"])
    except AudioDecodeError as exc:
        if as_json:
            click.echo(json.dumps({"error": {"code": exc.code, "message": str(exc)}}, ensure_ascii=False))
        raise click.ClickException(f"{exc.code}: {exc}")
    if as_json:
        click.echo(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        for s in result.segments:
            click.echo(f"[{s['start']:7.2f}–{s['end']:7.2f}] {s['speaker']:>8}: {s['text']}")


@main.group("audit")
def audit_group():
    """The access log."""


@audit_group.command("verify")
@with_appcontext
def audit_verify():
    """Check the whole hash chain; exit 1 naming the first bad entry."""
    from crm.security.audit import verify

    count, bad, message = verify()
    if bad is not None:
        click.echo(f"FAILED after {count} good entries: {message}", err=True)
        sys.exit(1)
    click.echo(f"ok: {count} entries, chain intact")


@main.group("keys")
def keys_group():
    """Key management."""


@keys_group.command("rotate")
@with_appcontext
def keys_rotate():
    """Add and promote a new KEK, then re-wrap every data key under it."""
    from crm.security.rotation import rewrap_all
    from crm.security.keyring import add_kek

    kid = add_kek(Path(current_app.config["CRM_KEYS_DIR"]))
    current_app.extensions.pop("crm_keyring", None)
    n = rewrap_all()
    click.echo(f"active key {kid}; re-wrapped {n} data keys")


@main.command("demo-data")
@click.option("--no-call", is_flag=True, help="skip uploading the demo call recording")
@with_appcontext
def demo_data(no_call):
    """Create demo users (one per role), demo citizens and appeals, and one real call (idempotent)."""
    from crm.demo import load_demo

    for line in load_demo(with_call=not no_call):
        click.echo(line)


if __name__ == "__main__":
    main()
