"""``crm buildings …``: the buildings register (crm.buildings.services does the work)."""
from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from crm.buildings.services import BuildingImportError, import_csv


@click.group("buildings")
def buildings_group():
    """The buildings register."""


@buildings_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def buildings_import(file: Path):
    """Import buildings from FILE.csv (UTF-8; columns address and optionally fias_id, entrances,
    apartments). One transaction for the file: the good rows are written, bad rows refused with
    their line numbers; re-importing updates, never duplicates.
    Exit status 0 when the file was read (refused rows included), 1 when it could not be."""
    try:
        result = import_csv(file.read_bytes())
    except BuildingImportError as exc:
        raise click.ClickException(f"{file}: {exc}; nothing imported")
    click.echo(f"added {result.added}, updated {result.updated}, refused {len(result.refused)}"
               + (f" ({result.unchanged} of the updated unchanged)" if result.unchanged else ""))
    for line, reason in result.refused:
        click.echo(f"  line {line}: {reason}")
