"""The demo clinic for `make run`: documented logins, see README.md."""

import click
from flask import current_app
from flask.cli import with_appcontext

from portal.auth import service as auth
from portal.clock import utcnow
from portal.extensions import db

DEMO_PASSWORD = "demo-clinic-2026"
DEMO_USERS = [
    # (email, name, locale, what they are in the demo)
    ("admin@demo.clinic", "Anne Admin", "en", "owner and admin of Demo Lægehus (Pro team)"),
    ("mads@demo.clinic", "Mads Madsen", "da", "member of Demo Lægehus"),
    ("mette@demo.clinic", "Mette Holm", "en", "member of Demo Lægehus"),
    ("free@demo.clinic", "Frederik Free", "da", "on Free, no team"),
]
PRO_TEAM = "Demo Lægehus"


def seed_demo() -> list[str]:
    """Create the demo users, the Pro team and its invoice history unless they exist."""
    from portal.dev.provision import add_invoice_history, provision_subscription
    from portal.invitations.service import invite_members
    from portal.permissions import membership_of
    from portal.teams.models import Membership
    from portal.teams.service import create_team

    now = utcnow()
    if auth.find_user_by_email(DEMO_USERS[0][0]):
        return []
    users = {
        email: auth.create_user(
            name=name, email=email, password=DEMO_PASSWORD, locale=locale, now=now, verified=True
        )
        for email, name, locale, _what in DEMO_USERS
    }
    admin = users["admin@demo.clinic"]
    subscription = provision_subscription(admin, plan="pro", interval="month", quantity=3)
    team = create_team(admin, PRO_TEAM, now=now)
    for email in ("mads@demo.clinic", "mette@demo.clinic"):
        db.session.add(Membership(team=team, user=users[email], role="member", created_at=now))
    db.session.flush()
    invite_members(membership_of(admin), "new.colleague@demo.clinic", "member", now=now)
    add_invoice_history(subscription, renewals=2)
    db.session.commit()
    return list(users)


@click.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Create the demo clinic (idempotent; development mode, local Stripe running)."""
    if not current_app.config["PORTAL_DEV"]:
        raise click.ClickException("seed-demo runs only in development mode")
    with current_app.test_request_context(base_url=current_app.config["PUBLIC_URL"]):
        created = seed_demo()
    click.echo(f"demo users created: {len(created)}; password for all: {DEMO_PASSWORD}")
