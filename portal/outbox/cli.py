"""Operator commands for the outbox: `flask --app portal outbox failed`, `outbox retry`."""

import click
from flask.cli import AppGroup

from portal.clock import utcnow
from portal.extensions import db
from portal.outbox import service

outbox_cli = AppGroup("outbox", help="What the worker could not carry out.")


@outbox_cli.command("failed")
def failed_command() -> None:
    """List the rows the worker gave up on, with their last error."""
    rows = service.failed_rows()
    for row in rows:
        to = f" to {row.payload['to']}" if row.kind == "email" else ""
        click.echo(f"{row.id}\t{row.kind}{to}\t{row.attempts} attempts\t{row.last_error}")
    click.echo(f"{len(rows)} failed row(s)")


@outbox_cli.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "everything", is_flag=True, help="Retry every failed row.")
def retry_command(ids: tuple[int, ...], everything: bool) -> None:
    """Queue failed rows again (by id, or --all); the worker carries them out."""
    if not ids and not everything:
        raise click.UsageError("name the row ids, or use --all")
    count = service.retry_failed(None if everything else list(ids), now=utcnow())
    db.session.commit()
    click.echo(f"{count} row(s) queued again")
