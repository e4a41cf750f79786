"""The demo clinic for `make run`: documented logins, see README.md."""

import click
from flask import current_app
from flask.cli import with_appcontext

from portal.auth import service as auth
from portal.clock import utcnow
from portal.extensions import db

DEMO_PASSWORD = "demo-clinic-2026"
DEMO_USERS = [
    # (email, name, locale, own plan or None)
    ("admin@demo.clinic", "Anne Admin (Pro)", "en", "pro"),
    ("free@demo.clinic", "Frederik Free", "da", None),
]


def seed_demo() -> list[str]:
    """Create the demo users and their subscriptions unless they exist; return new emails."""
    from portal.dev.provision import provision_subscription

    now = utcnow()
    created = []
    for email, name, locale, plan in DEMO_USERS:
        if auth.find_user_by_email(email):
            continue
        user = auth.create_user(
            name=name, email=email, password=DEMO_PASSWORD, locale=locale, now=now, verified=True
        )
        if plan:
            provision_subscription(user, plan=plan, interval="month")
        created.append(email)
    db.session.commit()
    return created


@click.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Create the demo clinic (idempotent; development mode, local Stripe running)."""
    if not current_app.config["PORTAL_DEV"]:
        raise click.ClickException("seed-demo runs only in development mode")
    created = seed_demo()
    click.echo(f"demo users created: {len(created)}; password for all: {DEMO_PASSWORD}")
