import click
from flask.cli import AppGroup

from portal.billing import service
from portal.billing.seats import reconcile
from portal.clock import utcnow

billing_cli = AppGroup("billing", help="Stripe products, prices and subscriptions.")


@billing_cli.command("bootstrap")
def bootstrap_command() -> None:
    """Create the products and tiered seat prices in Stripe (idempotent)."""
    created = service.bootstrap_prices()
    click.echo("created prices: " + (", ".join(created) if created else "none, all up to date"))


@billing_cli.command("reconcile")
def reconcile_command() -> None:
    """Make every subscription's Stripe quantity equal the team's paid seats; log each drift."""
    drifts = reconcile(now=utcnow())
    for drift in drifts:
        click.echo(f"fixed: {drift}")
    click.echo(f"{len(drifts)} drift(s) fixed")
