"""``crm users …``: staff accounts (crm.users.services does the work)."""
from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from crm.i18n import lazy_gettext as _l
from crm.users.services import UserError, create_user, get_by_username, issue_token


@click.group("users")
def users_group():
    """Staff accounts."""


@users_group.command("create")
@click.argument("username")
@click.option("--role", required=True)
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@click.option("--full-name", default="")
@click.option("--executor-id", type=int, default=None,
              help="for --role executor: the executor (crm executors directory) whose appeals the account sees")
@with_appcontext
def users_create(username, role, password_stdin, full_name, executor_id):
    """Create a staff account (an executor's: with --executor-id)."""
    if role == "executor" and executor_id is None:
        raise click.ClickException(_l("для роли executor укажите исполнителя: --executor-id ID "
                                      "(crm: GET /api/v1/executors)"))
    password = sys.stdin.readline().rstrip("\n") if password_stdin else click.prompt("Password", hide_input=True,
                                                                                      confirmation_prompt=True)
    try:
        user = create_user(username, role, password, full_name, executor_id=executor_id)
    except UserError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"created {user.username} ({user.role})")


@users_group.command("token")
@click.argument("username")
@with_appcontext
def users_token(username):
    """Print a new API token for USERNAME."""
    user = get_by_username(username)
    if user is None:
        raise click.ClickException(f"no user {username}")
    click.echo(issue_token(user))
