import click
from flask.cli import AppGroup
from sqlalchemy import select

from portal.clock import utcnow
from portal.extensions import db
from portal.teams import service
from portal.teams.models import Team

teams_cli = AppGroup("teams", help="Operator commands for teams.")


@teams_cli.command("set-managed")
@click.argument("team")
@click.option("--contact", help='Who admins should contact, e.g. "Name <email>".')
@click.option("--off", is_flag=True, help="End managed mode.")
def set_managed_command(team: str, contact: str | None, off: bool) -> None:
    """Mark TEAM (id or exact name) as run by a customer-success manager, or end it."""
    if bool(contact) == off:
        raise click.UsageError("give either --contact or --off")
    query = (
        select(Team).where(Team.id == int(team))
        if team.isdigit()
        else select(Team).where(Team.name == team)
    )
    found = db.session.scalars(query).all()
    if len(found) != 1:
        raise click.ClickException(f"{len(found)} teams match {team!r}")
    service.set_managed(found[0], None if off else contact, now=utcnow())
    db.session.commit()
    click.echo(
        f"team {found[0].id} ({found[0].name}): "
        + ("not managed" if off else f"managed by {contact}")
    )
