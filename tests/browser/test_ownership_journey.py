"""The owner hands the clinic's team to another admin, who accepts from the emailed link.

Olga owns and pays for the team; she offers ownership to Anna (an admin) from the team page.
Anna opens the link, logs in from it and accepts. The billing page then lets Anna manage
billing and asks her to check the card on file; Olga is an admin who sees billing read-only,
and Stripe keeps one customer and one subscription, now naming Anna.
"""

import pytest
from playwright.sync_api import Browser, Page, expect

from devtools.provision import provision_subscription
from portal.auth.models import User
from portal.auth.service import create_user
from portal.billing.models import StripeEvent
from portal.clock import utcnow
from portal.extensions import db
from portal.teams.models import Membership
from portal.teams.service import create_team
from tests.browser.conftest import words
from tests.browser.test_billing_journey import eventually, log_in, snap

PASSWORD = "morning coffee at the clinic"
TEAM = "Klinik Øst"
OWNER = "olga@oest.example"
ADMIN = "anna@oest.example"


def make_user(name: str, email: str, locale: str = "en") -> int:
    user = create_user(
        name=name, email=email, password=PASSWORD, locale=locale, now=utcnow(), verified=True
    )
    db.session.commit()
    return user.id


@pytest.mark.parametrize(
    ("lang", "js"),
    [
        pytest.param("en", True, id="en-js"),
        pytest.param(
            "da",
            False,
            id="da-nojs",
            marks=pytest.mark.browser_context_args(java_script_enabled=False),
        ),
    ],
)
def test_owner_hands_the_team_to_an_admin_who_accepts_from_the_link(
    page: Page, browser: Browser, live, live_stripe, shot, request, lang: str, js: bool
):
    """Both people use the portal in `lang`; before they log in, pages follow the browser's
    language (English)."""
    _ = words(lang)
    with live.app.test_request_context():
        owner = make_user("Olga Owner", OWNER, lang)
        anna = make_user("Anna Admin", ADMIN, lang)
        provision_subscription(db.session.get(User, owner), plan="pro", interval="month")
        db.session.commit()
        team = create_team(db.session.get(User, owner), TEAM, now=utcnow())
        db.session.add(Membership(team=team, user_id=anna, role="admin", created_at=utcnow()))
        db.session.commit()
        customer = team.subscription.stripe_customer_id
        subscription = team.subscription.stripe_subscription_id

    # 1. Olga offers ownership to Anna from the team page.
    page.goto(live.url + "/login")
    log_in(page, OWNER)
    page.get_by_role("navigation", name=_("Settings")).get_by_role("link", name="Teams").click()
    page.get_by_role("link", name=_("Transfer ownership")).click()
    heading = _("Transfer ownership of %(team)s", team=TEAM)
    expect(page.get_by_role("heading", name=heading)).to_be_visible()
    page.get_by_label(_("New owner")).select_option(label=f"Anna Admin ({ADMIN})")
    page.get_by_role("button", name=_("Offer ownership")).click()
    offered = _(
        "Ownership is offered to %(name)s (%(email)s) until %(date)s. Nothing changes until "
        "they accept.",
        name="Anna Admin",
        email=ADMIN,
        date="|",
    )
    expect(page.locator("#ownership-pending")).to_contain_text(offered.split("|")[0])
    expect(page.get_by_role("button", name=_("Cancel the offer"))).to_be_visible()
    shot(f"offered-{lang}")

    # 2. Anna opens the link in her own browser, logs in from it and accepts.
    context = browser.new_context(java_script_enabled=js)
    try:
        anna_page = context.new_page()
        link = live.link_in(live.wait_for_mail(ADMIN, TEAM), "/ownership/")
        anna_page.goto(link)
        expect(anna_page.get_by_role("heading", name=f"Take over {TEAM}")).to_be_visible()
        anna_page.get_by_role("link", name="Log in to answer").click()
        expect(anna_page.get_by_label("Email")).to_have_value(ADMIN)
        log_in(anna_page, ADMIN)
        accept = anna_page.get_by_role("button", name=_("Accept and become the owner"))
        expect(anna_page.locator("#what-happens")).to_contain_text(
            _(
                "The card on file is the one %(owner)s used until now. Check it, or add your "
                "own, under Manage billing.",
                owner="Olga Owner",
            )
        )
        snap(anna_page, request, "offer")
        accept.click()

        # 3. The billing page: Anna manages billing and is asked to check the card.
        expect(anna_page).to_have_url(live.url + "/settings/teams/billing")
        now_owner = _(
            "You now own %(team)s and pay for it. Check the card on file under Manage billing.",
            team=TEAM,
        )
        expect(anna_page.get_by_text(now_owner)).to_be_visible()
        expect(anna_page.get_by_role("button", name=_("Manage billing"))).to_be_visible()
        expect(anna_page.locator("#card-check")).to_be_visible()
        expect(anna_page.get_by_role("button", name=_("Show the new price"))).to_be_visible()
        snap(anna_page, request, f"ownership-transfer-{lang}")
        live.wait_for_mail(ADMIN, TEAM)
    finally:
        context.close()

    # 4. Olga is an admin now: billing read-only, the team page names Anna as the owner.
    live.wait_for_mail(OWNER, "Anna Admin")
    page.goto(live.url + "/settings/teams/billing")
    expect(
        page.get_by_text(_("Only the team owner, %(owner)s, changes billing.", owner="Anna Admin"))
    ).to_be_visible()
    expect(page.get_by_role("button", name=_("Manage billing"))).to_have_count(0)
    page.goto(live.url + "/settings/teams")
    rows = page.locator("#members tbody tr")
    expect(rows.filter(has_text="Anna Admin").locator(".badge")).to_have_text(_("Owner"))
    expect(rows.filter(has_text="Olga Owner").locator("td").nth(2)).to_have_text(_("Admin"))
    expect(rows.filter(has_text="Olga Owner").locator(".badge")).to_have_count(0)
    expect(page.get_by_role("link", name=_("Leave team"))).to_be_visible()
    shot(f"old-owner-team-{lang}")

    # Stripe: one customer and one subscription, now naming Anna.
    assert eventually(
        lambda: (
            live_stripe.get(f"/v1/subscriptions/{subscription}")["metadata"].get("user_id")
            == str(anna)
        )
    )
    assert live_stripe.get(f"/v1/customers/{customer}")["metadata"]["user_id"] == str(anna)
    assert [s["id"] for s in live_stripe.list("subscriptions")] == [subscription]
    # Those updates send webhooks to the portal a moment later: let them be handled before the
    # tables are emptied for the next test.
    assert eventually(lambda: handled(live, "customer.subscription.updated", "customer.updated"))


def handled(live, *types: str) -> bool:
    with live.app.app_context():
        seen = {e.type for e in db.session.query(StripeEvent).filter(StripeEvent.type.in_(types))}
        db.session.rollback()
    return seen == set(types)
