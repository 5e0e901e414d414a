"""The ``crm`` console script: a Flask CLI group for the app (design.md, "Stable interfaces").

Each feature declares its commands in its own ``cli.py`` (``crm users``, ``crm consent``, ``crm audit``,
``crm keys``, ``crm transcribe``, ``crm qa``); the worker's are in :mod:`crm.worker` (``crm worker``, ``crm status``); this
module keeps the instance's own (``crm init``, ``crm redis``, ``crm demo-data``) and
:func:`register_commands`, which the factory calls, so ``flask --app crm`` and
``app.test_cli_runner()`` see the same commands as ``crm``. Commands parse options, call services
and print.
"""
from __future__ import annotations

from pathlib import Path

import click
import flask_migrate.cli as migrate_cli
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from crm import config, create_app, jobs
from crm.buildings.cli import buildings_group
from crm.calls.cli import rekey_recordings_cmd, transcribe_cmd
from crm.clocks.cli import calendar_group
from crm.config import DEMO_CONTROLLER  # noqa: F401  (re-exported: tests and docs name it here)
from crm.consent.cli import consent_group
from crm.consent.services import controller_configured
from crm.db import grant_app_role_as_owner
from crm.demo import load_demo
from crm.dpo.cli import audit_scan
from crm.qa.cli import qa_group
from crm.security import keystore
from crm.security.cli import audit_group, keys_group
from crm.security.keyring import init_keys
from crm.telephony.cli import telephony_group
from crm.users.cli import users_group
from crm.worker import status_cmd, worker_cmd


@click.group(cls=FlaskGroup, create_app=lambda: create_app(), add_version_option=False)
def main():
    """Citizen hotline CRM (ЖКХ)."""


@click.command("init")
@with_appcontext
def init_cmd():
    """Create the instance folder, its config with a generated secret, and the keyring. Never overwrites."""
    instance = Path(current_app.instance_path)
    cfg = config.create_instance(instance)
    if cfg is not None:
        click.echo(f"created {cfg}")
        current_app.config.from_pyfile(str(cfg))
    if init_keys(Path(current_app.config["CRM_KEYS_DIR"])):
        click.echo(f"created keyring in {current_app.config['CRM_KEYS_DIR']}")
    keystore.ensure()  # the key store's tables (its own database; no Alembic history)
    click.echo(f"instance ready: {instance}")


@click.group("redis")
def redis_group():
    """The embedded Redis server (used when REDIS_URL is not set)."""


@redis_group.command("start")
@with_appcontext
def redis_start():
    click.echo(jobs.start_embedded(Path(current_app.instance_path)))


@redis_group.command("stop")
@with_appcontext
def redis_stop():
    click.echo("stopped" if jobs.stop_embedded(Path(current_app.instance_path)) else "not running")


@click.command("demo-data")
@click.option("--no-call", is_flag=True, help="skip uploading the demo call recording")
@with_appcontext
def demo_data(no_call):
    """Create demo users (one per role), demo citizens and appeals, and one real call (idempotent)."""
    if not controller_configured():
        written = config.add_demo_controller(current_app)
        if written is not None:
            click.echo(f"  demo controller (fictitious) written to {written}: {DEMO_CONTROLLER[0]}")
    if not current_app.config["CRM_TELEPHONY_SECRET"] and not current_app.config["CRM_TELEPHONY_SECRETS"]:
        written = config.add_telephony_secret(current_app)
        if written is not None:
            click.echo(f"  telephony webhook secret (CRM_TELEPHONY_SECRET) generated in {written}")
    for line in load_demo(with_call=not no_call):
        click.echo(line)


@click.command("grant-app-role")
@click.argument("name")
@click.option("--no-create", is_flag=True, help="refuse instead of creating the role when it does not exist")
@with_appcontext
def grant_app_role_cmd(name, no_create):
    """PostgreSQL: let role NAME do what the application needs and nothing more (data access, no
    ownership, no DDL; only INSERT and SELECT on the access log), now and on tables later migrations
    add. Runs as the tables' owner (CRM_MIGRATIONS_DATABASE_URL, else DATABASE_URL); then run the
    application with DATABASE_URL connecting as NAME, so it cannot switch the log's trigger off."""
    try:
        statements = grant_app_role_as_owner(current_app, name, create=not no_create)
    except ValueError as exc:
        raise click.ClickException(str(exc))
    for statement in statements:
        click.echo(statement + ";")
    click.echo(f"role {name} may read and write the data but owns nothing: connect the application as {name} "
               f"(DATABASE_URL) and run `crm db upgrade` as the owner (CRM_MIGRATIONS_DATABASE_URL)")


migrate_cli.db.add_command(grant_app_role_cmd)  # `crm db grant-app-role`, beside Flask-Migrate's own commands
audit_group.add_command(audit_scan)  # `crm audit scan`: the DPO's alerts (crm.dpo), beside the log's own commands

#: Every command of the app, by feature.
COMMANDS = (init_cmd, redis_group, demo_data, users_group, buildings_group, telephony_group, calendar_group, consent_group, qa_group, audit_group, keys_group, transcribe_cmd, rekey_recordings_cmd,
            worker_cmd, status_cmd)


def register_commands(app: Flask) -> None:
    """Add every command of :data:`COMMANDS` to ``app.cli`` (called by :func:`crm.create_app`)."""
    for command in COMMANDS:
        app.cli.add_command(command)


if __name__ == "__main__":
    main()
