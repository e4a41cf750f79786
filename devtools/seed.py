"""The demo clinic for `make run`: documented logins, see README.md."""

from datetime import timedelta

import click
from flask import current_app
from flask.cli import with_appcontext

from devtools.provision import add_invoice_history, provision_subscription
from portal.auth import service as auth
from portal.clinical_sessions.models import ClinicalSession
from portal.clock import utcnow
from portal.extensions import db
from portal.invitations.service import Entry, invite_members
from portal.team_templates.models import NoteTemplate
from portal.teams.models import Membership
from portal.teams.queries import membership_of
from portal.teams.service import create_team

DEMO_PASSWORD = "demo-clinic-2026"
DEMO_USERS = [
    # (email, name, locale, what they are in the demo)
    ("admin@demo.clinic", "Anne Admin", "en", "owner and admin of Demo Lægehus (Pro team)"),
    ("mads@demo.clinic", "Mads Madsen", "da", "member of Demo Lægehus"),
    ("mette@demo.clinic", "Mette Holm", "en", "member of Demo Lægehus"),
    ("pia@demo.clinic", "Pia Praksis", "da", "owner and admin of Demo Praksis (Practice team)"),
    ("lars@demo.clinic", "Lars Læge", "da", "member of Demo Praksis, shares a session"),
    ("assistant@demo.clinic", "Asta Assistent", "da", "assistant in Demo Praksis (free seat)"),
    ("free@demo.clinic", "Frederik Free", "da", "on Free, no team"),
]
PRO_TEAM = "Demo Lægehus"
PRACTICE_TEAM = "Demo Praksis"
TEMPLATES = [
    ("Knæ, opfølgning", "Ortopædi", "Årsag til kontakt:\n\nUndersøgelse:\n\nVurdering:\n\nPlan:\n"),
    (
        "Astmakontrol",
        "Almen praksis",
        "Symptomer siden sidst:\n\nMedicin:\n\nPeak flow:\n\nPlan:\n",
    ),
    ("Første konsultation", None, "Anamnese:\n\nObjektivt:\n\nVurdering:\n\nPlan:\n"),
]


def seed_demo() -> list[str]:
    """Create the demo users, the Pro team and its invoice history unless they exist."""
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
    invite_members(membership_of(admin), [Entry("new.colleague@demo.clinic")], "member", now=now)
    add_invoice_history(subscription, renewals=2)
    _seed_practice_team(users, now=now)
    db.session.commit()
    return list(users)


def _seed_practice_team(users, *, now) -> None:
    owner = users["pia@demo.clinic"]
    provision_subscription(owner, plan="practice", interval="year", quantity=2)
    team = create_team(owner, PRACTICE_TEAM, now=now)
    team.sharing_enabled = True
    team.locale = "da"
    db.session.add(
        Membership(team=team, user=users["lars@demo.clinic"], role="member", created_at=now)
    )
    db.session.add(
        Membership(team=team, user=users["assistant@demo.clinic"], role="assistant", created_at=now)
    )
    for title, specialty, body in TEMPLATES:
        db.session.add(
            NoteTemplate(
                team_id=team.id,
                title=title,
                specialty=specialty,
                body=body,
                search_text=f"{title} {specialty or ''}".lower(),
                created_by_id=owner.id,
                created_at=now,
                updated_at=now,
            )
        )
    db.session.add(
        ClinicalSession(
            owner=users["lars@demo.clinic"],
            title="Knæsmerter, kontrol",
            date=(now - timedelta(days=1)).date(),
            note="Årsag til kontakt:\nKnæsmerter efter løb.\n\nPlan:\nFysioterapi, kontrol om 4 uger.\n",
            shared_team_id=team.id,
            shared_at=now,
            created_at=now,
            updated_at=now,
        )
    )


@click.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Create the demo clinic (idempotent; development mode, local Stripe running)."""
    if not current_app.config["PORTAL_DEV"]:
        raise click.ClickException("seed-demo runs only in development mode")
    with current_app.test_request_context(base_url=current_app.config["PUBLIC_URL"]):
        created = seed_demo()
    click.echo(f"demo users created: {len(created)}; password for all: {DEMO_PASSWORD}")
