"""``crm users …``: staff accounts (crm.users.services does the work; issue 17 point 4).

``list``, ``create``, ``disable``, ``enable``, ``role``, ``reset-password``, ``end-sessions``,
``token``, ``tokens``, ``revoke-token``, ``revoke-tokens``. Changes are logged in the access log as an
administrator's console command (``job:cli``). Errors are Russian, like the services' messages; a
refusal exits 1."""
from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from crm.i18n import lazy_gettext as _l
from crm.users import services
from crm.users.services import UserError, create_user, get_by_username, issue_token


@click.group("users")
def users_group():
    """Staff accounts."""


def _user(username: str):
    """The user named ``username``, or exit 1 naming it."""
    user = get_by_username(username)
    if user is None:
        raise click.ClickException(f"no user {username}")
    return user


def _when(dt) -> str:
    return dt.strftime("%Y-%m-%d %H:%M UTC") if dt else "—"


@users_group.command("list")
@click.option("--role", default=None, help="only this role")
@with_appcontext
def users_list(role):
    """Staff accounts: name, role, active or disabled, created, last sign-in."""
    for u in services.list_users(role):
        click.echo(f"{u.username}\t{u.role}\t{'active' if u.active else 'disabled'}\tcreated {_when(u.created_at)}"
                   f"\tlast sign-in {_when(u.last_login_at)}" + (f"\t{u.full_name}" if u.full_name else ""))


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


@users_group.command("disable")
@click.argument("username")
@with_appcontext
def users_disable(username):
    """Disable USERNAME: no sign-in, sessions end, API tokens refused. The last active admin cannot be disabled."""
    user = _user(username)
    try:
        changed = services.disable_user(user)
    except UserError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"disabled {user.username}" if changed else f"{user.username} was already disabled")


@users_group.command("enable")
@click.argument("username")
@with_appcontext
def users_enable(username):
    """Enable a disabled USERNAME."""
    user = _user(username)
    click.echo(f"enabled {user.username}" if services.enable_user(user) else f"{user.username} was already active")


@users_group.command("role")
@click.argument("username")
@click.argument("role")
@click.option("--executor-id", type=int, default=None, help="for ROLE executor: the executor whose appeals it sees")
@with_appcontext
def users_role(username, role, executor_id):
    """Give USERNAME the role ROLE; its sessions end. The last active admin keeps the admin role."""
    user = _user(username)
    try:
        changed = services.change_role(user, role, executor_id=executor_id)
    except UserError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"{user.username}: role {user.role}" if changed else f"{user.username} already has role {user.role}")


@users_group.command("reset-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="read the new password from standard input "
                                                     "(otherwise a temporary one is generated and printed)")
@with_appcontext
def users_reset_password(username, password_stdin):
    """Set a new password for USERNAME and end its sessions; prints the generated temporary password."""
    user = _user(username)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    try:
        new = services.reset_password(user, password=password)
    except UserError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"password of {user.username} changed" if password_stdin else new)


@users_group.command("end-sessions")
@click.argument("username")
@with_appcontext
def users_end_sessions(username):
    """End every session of USERNAME (the pages ask it to sign in again)."""
    user = _user(username)
    services.end_sessions(user)
    click.echo(f"sessions of {user.username} ended")


@users_group.command("token")
@click.argument("username")
@click.option("--expires-days", type=click.IntRange(1, services.TOKEN_MAX_DAYS), default=None,
              help="the token stops working after N days (default: never)")
@click.option("--name", "name", default="", help="what the token is for (e.g. PBX, IVR)")
@with_appcontext
def users_token(username, expires_days, name):
    """Print a new API token for USERNAME (shown once; only its hash is kept)."""
    user = _user(username)
    try:
        click.echo(issue_token(user, name=name, expires_days=expires_days))
    except UserError as exc:
        raise click.ClickException(str(exc))


@users_group.command("tokens")
@click.argument("username")
@with_appcontext
def users_tokens(username):
    """API tokens of USERNAME: id, name, created, expiry, last use, state (never the token)."""
    user = _user(username)
    for t in services.tokens_of(user):
        state = "revoked" if t.revoked else "expired" if services.token_expired(t) else "active"
        click.echo(f"{t.id}\t{t.name or '—'}\tcreated {_when(t.created_at)}\texpires {_when(t.expires_at)}"
                   f"\tlast used {_when(t.last_used_at)}\t{state}")


@users_group.command("revoke-token")
@click.argument("token_id", type=int)
@with_appcontext
def users_revoke_token(token_id):
    """Revoke the API token TOKEN_ID (see crm users tokens NAME)."""
    try:
        row = services.revoke_token(token_id)
    except UserError as exc:
        raise click.ClickException(str(exc))
    click.echo(f"revoked token {row.id}")


@users_group.command("revoke-tokens")
@click.argument("username")
@with_appcontext
def users_revoke_tokens(username):
    """Revoke every API token of USERNAME."""
    user = _user(username)
    click.echo(f"revoked {services.revoke_tokens(user)} tokens of {user.username}")


@users_group.command("reset-2fa")
@click.argument("username")
@with_appcontext
def users_reset_2fa(username):
    """Remove USERNAME's second factor and end their sessions: they set it up again at the next sign-in."""
    user = _user(username)
    services.reset_second_factor(user, None)
    click.echo(f"second factor of {user.username} reset: they enrol again at the next sign-in")
