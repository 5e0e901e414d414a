"""``crm calendar …``: the administrators' calendar overrides (crm.clocks.services does the work).

Changes name the administrator who makes them (``--admin NAME``, an active account of role admin):
the service checks the role and writes the access-log entry (``calendar.override``) under that name."""
from __future__ import annotations

from datetime import date

import click
from flask.cli import with_appcontext

from crm.clocks import services
from crm.clocks.workcalendar import OVERRIDE_KINDS
from crm.errors import InvalidInput, NotFound
from crm.security.permissions import PermissionDenied
from crm.users.services import get_by_username


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date YYYY-MM-DD") from None


def _admin(name: str):
    user = get_by_username(name)
    if user is None or not user.is_active:
        raise click.ClickException(f"no active user {name}")
    return user


@click.group("calendar")
def calendar_group():
    """The working calendar's overrides: holidays, extra working days, shortened days."""


@calendar_group.command("list")
@click.option("--from", "start", default=None, help="first day, YYYY-MM-DD")
@click.option("--to", "end", default=None, help="last day, YYYY-MM-DD")
@with_appcontext
def calendar_list(start, end):
    """Print the overrides: day, kind, hours (shortened days), note."""
    rows = services.overrides(_day(start) if start else None, _day(end) if end else None)
    for r in rows:
        hours = f"{r.hours:g} h" if r.hours else "-"
        click.echo(f"{r.day.isoformat()}  {r.kind:9}  {hours:6}  {r.note or ''}".rstrip())
    if not rows:
        click.echo("no overrides")


@calendar_group.command("add")
@click.argument("day")
@click.argument("kind", type=click.Choice(OVERRIDE_KINDS))
@click.option("--hours", type=float, default=None, help="a shortened day's length (default: one hour less)")
@click.option("--note", default=None, help="why: the decree or regional law")
@click.option("--admin", "admin_name", required=True, help="the administrator making the change (logged)")
@with_appcontext
def calendar_add(day, kind, hours, note, admin_name):
    """Mark DAY (YYYY-MM-DD) as KIND: holiday (a day off), working (an extra working day) or
    shortened; replaces the day's earlier override."""
    try:
        row = services.set_override(_admin(admin_name), _day(day), kind, hours=hours, note=note)
    except (InvalidInput, PermissionDenied) as exc:
        raise click.ClickException(str(exc))
    click.echo(f"{row.day.isoformat()}: {row.kind}" + (f" {row.hours:g} h" if row.hours else ""))


@calendar_group.command("remove")
@click.argument("day")
@click.option("--admin", "admin_name", required=True, help="the administrator making the change (logged)")
@with_appcontext
def calendar_remove(day, admin_name):
    """Drop the override of DAY (YYYY-MM-DD): the package's calendar applies again."""
    try:
        services.remove_override(_admin(admin_name), _day(day))
    except (NotFound, PermissionDenied) as exc:
        raise click.ClickException(str(exc))
    click.echo(f"{day}: removed")
