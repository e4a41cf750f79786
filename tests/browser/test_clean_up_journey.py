"""Keeping a clinic's team tidy without anyone losing access silently.

An admin resends and then revokes the expired invitations in one click each. The owner of a
Practice team deletes it: the page warns how many team templates go and copies them to her
personal templates (on by default), and every member is emailed that they are now on Free.
In English with JavaScript, and in Danish without.
"""

from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from devtools.provision import provision_subscription
from portal.auth.service import create_user
from portal.clock import utcnow
from portal.extensions import db
from portal.invitations import service as invitations
from portal.invitations.models import Invitation
from portal.team_templates.models import NoteTemplate
from portal.teams import service as teams
from portal.teams.models import Membership
from tests.browser.conftest import words
from tests.browser.test_billing_journey import PASSWORD, log_in

OWNER = "olga@vest.example"
TEAM = "Klinik Vest"
LANGUAGES = [
    pytest.param("en", True, id="en-js"),
    pytest.param(
        "da", False, id="da-nojs", marks=pytest.mark.browser_context_args(java_script_enabled=False)
    ),
]


def make_team(live, locale: str, plan: str, members=()) -> int:
    now = utcnow()
    with live.app.test_request_context():
        olga = create_user(
            name="Olga Owner", email=OWNER, password=PASSWORD, locale=locale, now=now, verified=True
        )
        db.session.commit()
        provision_subscription(olga, plan=plan, interval="month")
        team = teams.create_team(olga, TEAM, now=now)
        for name, email in members:
            user = create_user(
                name=name, email=email, password=PASSWORD, locale=locale, now=now, verified=True
            )
            db.session.add(Membership(team=team, user_id=user.id, role="member", created_at=now))
        db.session.commit()
        return team.id


def invite(live, team_id: int, *addresses: str, days_ago: int = 0) -> None:
    """Invitations sent `days_ago` days ago (30 days or more: expired)."""
    with live.app.test_request_context():
        me = db.session.query(Membership).filter_by(team_id=team_id).first()
        sent = utcnow() - timedelta(days=days_ago)
        invitations.invite_members(
            me, [invitations.Entry(a) for a in addresses], "member", now=sent
        )
        db.session.commit()


def invitation_states(live) -> dict[str, str]:
    with live.app.app_context():
        rows = db.session.query(Invitation).all()
        states = {i.email: invitations.state(i, utcnow()) for i in rows}
        db.session.rollback()
    return states


@pytest.mark.parametrize(("lang", "js"), LANGUAGES)
def test_an_admin_resends_then_revokes_the_expired_invitations(
    page: Page, live, live_stripe, shot, lang: str, js: bool
):
    _ = words(lang)
    team = make_team(live, lang, "pro")
    invite(live, team, "anna@vest.example", "bo@vest.example", days_ago=40)
    invite(live, team, "kim@vest.example", days_ago=1)
    page.goto(live.url + "/login")
    log_in(page, OWNER)
    page.goto(live.url + "/settings/teams")
    listing = page.locator("#invitations")
    expect(listing).to_contain_text(
        _.n("%(num)d invitation has expired.", "%(num)d invitations have expired.", 2)
    )
    shot(f"expired-{lang}")

    page.get_by_role("button", name=_("Resend all expired")).click()
    expect(listing).not_to_contain_text(_("Resend all expired"))
    assert live.wait_for_mail("anna@vest.example", TEAM)
    assert live.wait_for_mail("bo@vest.example", TEAM)
    assert set(invitation_states(live).values()) == {"pending"}

    # A month later Kim's invitation has expired as well, and nobody wants it any more.
    with live.app.app_context():
        kim = db.session.query(Invitation).filter_by(email="kim@vest.example").one()
        kim.expires_at = utcnow() - timedelta(hours=1)
        db.session.commit()
    page.reload()
    expect(listing).to_contain_text(
        _.n("%(num)d invitation has expired.", "%(num)d invitations have expired.", 1)
    )
    if js:
        page.once("dialog", lambda dialog: dialog.accept())  # "Revoke all expired invitations?"
    page.get_by_role("button", name=_("Revoke all expired")).click()
    expect(listing.locator("tbody tr")).to_have_count(2)
    expect(listing).not_to_contain_text("kim@vest.example")
    assert invitation_states(live)["kim@vest.example"] == "revoked"


@pytest.mark.parametrize(("lang", "js"), LANGUAGES)
def test_the_owner_deletes_a_practice_team_and_keeps_its_templates(
    page: Page, live, live_stripe, shot, lang: str, js: bool
):
    _ = words(lang)
    team = make_team(live, lang, "practice", [("Mads Member", "mads@vest.example")])
    with live.app.app_context():
        for title in ("Knee check-up", "Diabetes control"):
            db.session.add(NoteTemplate(title=title, body="Findings:", team_id=team))
        db.session.commit()
    page.goto(live.url + "/login")
    log_in(page, OWNER)
    page.goto(live.url + "/settings/teams")
    page.get_by_role("link", name=_("Delete team")).click()
    expect(page.locator(".warning")).to_have_text(
        _.n(
            "The team's %(num)d shared template is deleted with the team.",
            "The team's %(num)d shared templates are deleted with the team.",
            2,
        )
    )
    keep = page.get_by_label(
        _.n(
            "Copy the template to my personal templates first",
            "Copy the %(num)d templates to my personal templates first",
            2,
        )
    )
    expect(keep).to_be_checked()
    page.get_by_label(_("Type the team name to confirm")).fill(TEAM)
    shot(f"delete-practice-team-{lang}")
    page.get_by_role("button", name=_("Delete team")).click()

    mail = live.wait_for_mail("mads@vest.example", TEAM)
    assert _("You are now on Free. To keep Pro or Practice features, subscribe on your own:") in (
        live.mail.body(mail)
    )
    page.goto(live.url + "/templates")
    expect(page.get_by_text("Knee check-up")).to_be_visible()
    expect(page.get_by_text("Diabetes control")).to_be_visible()
    with live.app.app_context():
        kept = db.session.query(NoteTemplate).filter(NoteTemplate.owner_id.isnot(None)).count()
    assert kept == 2
