"""The owner follows the team's billing in the browser while colleagues join.

A Free colleague and a colleague with their own Pro subscription accept invitations; the Pro
colleague's own subscription is cancelled and refunded, the team's seats follow in Stripe, and
"Manage billing" opens the (local) Stripe portal and comes back. A second test checks that an
admin who is not the owner sees billing read-only and a member does not see it at all.
"""

import re
import time

import pytest
from playwright.sync_api import Browser, Page, expect

from devtools.provision import provision_subscription
from portal.auth.models import User
from portal.auth.service import create_user
from portal.clock import utcnow
from portal.extensions import db
from portal.outbox.service import process_due
from portal.teams.models import Membership
from portal.teams.service import create_team
from tests.browser.conftest import SHOTS, words

PASSWORD = "morning coffee at the clinic"
TEAM = "Klinik Nord"
OWNER = "olga@nord.example"
FREE = "frida@nord.example"
PRO = "peter@nord.example"
SUBJECT = f"invited you to join {TEAM}"


def make_user(name: str, email: str, *, pro: bool = False, locale: str = "en") -> int:
    user = create_user(
        name=name, email=email, password=PASSWORD, locale=locale, now=utcnow(), verified=True
    )
    db.session.commit()
    if pro:
        provision_subscription(db.session.get(User, user.id), plan="pro", interval="month")
        db.session.commit()
    return user.id


def make_team(owner_id: int, members: tuple[tuple[int, str], ...] = ()) -> tuple[int, str]:
    """The team and, for the role test, memberships; returns (team id, Stripe subscription)."""
    team = create_team(db.session.get(User, owner_id), TEAM, now=utcnow())
    for user_id, role in members:
        db.session.add(Membership(team=team, user_id=user_id, role=role, created_at=utcnow()))
    db.session.commit()
    return team.id, team.subscription.stripe_subscription_id


def log_in(page: Page, email: str) -> None:
    """Fill in the log-in form the page shows (the email may already be prefilled)."""
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def snap(page: Page, request, name: str) -> None:
    """Like the `shot` fixture, for the pages of the colleagues' own browser contexts."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{request.node.name}-{name}.png"), full_page=True)


def quantity(live_stripe, subscription_id: str) -> int:
    return live_stripe.get(f"/v1/subscriptions/{subscription_id}")["items"]["data"][0]["quantity"]


def eventually(check, timeout: float = 10):
    """Poll `check` until it returns something truthy (Stripe and its webhooks are async)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            assert result, "condition not met in time"
            return result
        time.sleep(0.1)


def join(page: Page, live, email: str, request, name: str, *, own_pro: bool) -> int | None:
    """A colleague opens their invitation in their own browser, logs in from it and accepts.

    Returns, for someone with their own Pro, the refund the page announced (in øre)."""
    link = live.link_in(live.wait_for_mail(email, SUBJECT), "/invitations/")
    page.goto(link)
    expect(page.get_by_role("heading", name=f"Join {TEAM}")).to_be_visible()
    page.get_by_role("link", name="Log in to accept").click()
    expect(page.get_by_label("Email")).to_have_value(email)
    log_in(page, email)
    accept = page.get_by_role("button", name=f"Accept and join {TEAM}")
    expect(accept).to_be_visible()
    what_happens = page.locator("#what-happens")
    if own_pro:
        expect(what_happens).to_contain_text(
            "Your own Pro subscription is cancelled when you accept, and the unused part of "
            "your last payment is refunded to your card."
        )
        preview = page.locator("#joiner-preview")
        expect(preview).to_contain_text(re.compile(r"Now: DKK\s?[\d,]+\.\d\d back to your card\."))
        expect(preview).to_contain_text("Each month: you stop paying DKK\u00a0299.00.")
        amount = re.search(r"Now: DKK\s?([\d,]+)\.(\d\d)", preview.inner_text())
        announced = int(amount.group(1).replace(",", "")) * 100 + int(amount.group(2))
    else:
        expect(page.locator("#joiner-preview")).to_have_count(0)
        announced = None
    expect(what_happens).to_contain_text(f"You get Pro through {TEAM}, which pays for your seat.")
    snap(page, request, f"{name}-invitation")
    accept.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(TEAM)
    expect(page.get_by_text(f"Welcome to {TEAM}!")).to_be_visible()
    return announced


def test_owner_follows_seats_and_opens_the_stripe_portal(
    page: Page, browser: Browser, live, live_stripe, shot, request
):
    with live.app.test_request_context():
        owner = make_user("Olga Owner", OWNER, pro=True)
        make_user("Frida Free", FREE)
        pro = make_user("Peter Pro", PRO, pro=True)
        pro_customer = db.session.get(User, pro).stripe_customer_id
        _team, subscription_id = make_team(owner)
    [pro_subscription] = [
        s for s in live_stripe.list("subscriptions") if s["customer"] == pro_customer
    ]
    assert pro_subscription["status"] == "active"
    contexts = []

    def new_page() -> Page:
        context = browser.new_context()
        contexts.append(context)
        return context.new_page()

    try:
        # 2. The owner logs in, opens Settings → Teams, then Billing from the seat summary.
        page.goto(live.url + "/login")
        log_in(page, OWNER)
        expect(page.get_by_role("heading", name="Your plan: Pro")).to_be_visible()
        page.get_by_role("navigation", name="Settings").get_by_role("link", name="Teams").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(TEAM)
        page.locator("#seat-summary").get_by_role("link", name="Billing").click()
        expect(page).to_have_url(live.url + "/settings/teams/billing")
        expect(page.get_by_role("heading", name=f"Billing for {TEAM}")).to_be_visible()
        expect(page.locator("#billing-seats")).to_have_text("1 paid seat")
        expect(page.locator("#billing-plan")).to_have_text("Pro, billed monthly")
        shot("billing-one-seat")

        # 3. Both colleagues are invited at once.
        page.get_by_role("navigation", name="Settings").get_by_role("link", name="Teams").click()
        page.get_by_label("Email addresses").fill(f"{FREE}, {PRO}")
        page.get_by_role("button", name="Send invitations").click()
        invitations = page.locator("#invitations tbody tr")
        expect(invitations.filter(has_text=FREE)).to_be_visible()
        expect(invitations.filter(has_text=PRO)).to_be_visible()

        # 4. The Free colleague logs in from the invitation and accepts.
        join(new_page(), live, FREE, request, "free", own_pro=False)

        # 5. The Pro colleague is told their own subscription ends, with the refund.
        pro_page = new_page()
        announced = join(pro_page, live, PRO, request, "pro", own_pro=True)
        assert eventually(
            lambda: (
                live_stripe.get(f"/v1/subscriptions/{pro_subscription['id']}")["status"]
                == "canceled"
            )
        )
        [refund] = eventually(lambda: live_stripe.list("refunds"))
        assert live_stripe.get(f"/v1/charges/{refund['charge']}")["customer"] == pro_customer
        assert abs(refund["amount"] - announced) <= 1, (refund["amount"], announced)
        pro_page.get_by_role("navigation", name="Settings").get_by_role(
            "link", name="Account"
        ).click()
        expect(pro_page.get_by_role("heading", name="Your plan: Pro")).to_be_visible()
        # Once the worker has cancelled their own subscription (a moment after accepting, on a
        # busy machine a few seconds), there is no billing of their own to manage.
        manage = pro_page.get_by_role("button", name="Manage billing")
        assert eventually(lambda: pro_page.reload() and manage.count() == 0, timeout=20)
        snap(pro_page, request, "pro-account")
        # The outbox handler queues this email; the worker (one poll here) sends it.
        with live.app.test_request_context(base_url=live.url):
            process_due()
        cancelled_mail = live.wait_for_mail(PRO, "Your own Pro subscription is cancelled")
        assert f"We refunded DKK\xa0{refund['amount'] / 100:,.2f}," in live.mail.body(
            cancelled_mail
        )

        # 6. The owner's billing page counts three seats; so does Stripe.
        page.goto(live.url + "/settings/teams/billing")
        expect(page.locator("#billing-seats")).to_have_text("3 paid seats")
        assert eventually(lambda: quantity(live_stripe, subscription_id) == 3)
        shot("billing-three-seats")

        # 7. Manage billing leaves for the Stripe portal and returns to the billing page.
        page.get_by_role("button", name="Manage billing").click()
        expect(page).to_have_url(re.compile(r"/portal/bps_\w+$"))
        seats = page.get_by_role("row").filter(has_text="active")
        expect(seats.get_by_role("cell").nth(1)).to_have_text("3")
        expect(page.get_by_text("Card ending in 4242")).to_be_visible()
        shot("stripe-portal")
        page.get_by_role("link", name="Return to the portal").click()
        expect(page).to_have_url(live.url + "/settings/teams/billing")
        expect(page.locator("#billing-seats")).to_have_text("3 paid seats")
    finally:
        for context in contexts:
            context.close()


def test_an_admin_sees_billing_read_only_and_a_member_not_at_all(
    page: Page, browser: Browser, live, live_stripe, shot
):
    with live.app.test_request_context():
        owner = make_user("Olga Owner", OWNER, pro=True)
        admin = make_user("Anders Admin", "anders@nord.example")
        member = make_user("Mona Member", "mona@nord.example")
        # Memberships written directly: the page counts them; Stripe's quantity stays 1.
        make_team(owner, ((admin, "admin"), (member, "member")))

    page.goto(live.url + "/login")
    log_in(page, "anders@nord.example")
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Teams").click()
    page.locator("#seat-summary").get_by_role("link", name="Billing").click()
    expect(page.get_by_role("heading", name=f"Billing for {TEAM}")).to_be_visible()
    expect(page.locator("#billing-seats")).to_have_text("3 paid seats")
    expect(page.get_by_text("Only the team owner, Olga Owner, changes billing.")).to_be_visible()
    expect(page.get_by_role("button", name="Manage billing")).to_have_count(0)
    expect(page.get_by_role("button", name="Show the new price")).to_have_count(0)
    expect(page.locator("form[action$='/settings/teams/billing/plan']")).to_have_count(0)
    expect(page.get_by_role("button", name="Save invoice details")).to_have_count(0)
    shot("admin-read-only")

    context = browser.new_context()
    try:
        member_page = context.new_page()
        member_page.goto(live.url + "/login")
        log_in(member_page, "mona@nord.example")
        member_page.get_by_role("navigation", name="Settings").get_by_role(
            "link", name="Teams"
        ).click()
        expect(member_page.get_by_role("heading", level=1)).to_have_text(TEAM)
        expect(member_page.locator("#seat-summary")).to_contain_text("3 members")
        expect(member_page.locator("#seat-summary").get_by_role("link")).to_have_count(0)
        response = member_page.goto(live.url + "/settings/teams/billing")
        assert response.status == 403
        expect(member_page.locator("#error-message")).to_contain_text(
            "You do not have access to this page or action."
        )
        expect(member_page.get_by_role("button", name="Manage billing")).to_have_count(0)
    finally:
        context.close()


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
def test_the_owner_previews_and_confirms_a_switch_to_annual_billing(
    page: Page, live, live_stripe, shot, lang: str, js: bool
):
    _ = words(lang)
    with live.app.test_request_context():
        owner = make_user("Olga Owner", OWNER, pro=True, locale=lang)
        _team, subscription_id = make_team(owner)

    def price_of_subscription() -> str:
        return live_stripe.get(f"/v1/subscriptions/{subscription_id}")["items"]["data"][0]["price"][
            "lookup_key"
        ]

    page.goto(live.url + "/login")
    log_in(page, OWNER)
    page.goto(live.url + "/settings/teams/billing")
    page.get_by_label(_("Billing cycle"), exact=True).select_option(label=_("Annual"))
    page.get_by_role("button", name=_("Show the new price")).click()
    # The preview comes from Stripe: price per seat, the new total and the proration.
    preview = page.locator("#plan-preview")
    switching = _(
        "You are switching the team to %(plan)s, billed %(cycle)s.",
        plan="Pro",
        cycle=_("annually"),
    )
    expect(page.get_by_text(switching)).to_be_visible()
    expect(preview).to_contain_text(_("Price per seat"))
    expect(preview.locator("dd").first).to_contain_text(_("per year"))
    expect(preview).not_to_contain_text(_("estimate"))
    shot(f"plan-change-preview-{lang}")
    assert price_of_subscription() == "pro_month"  # nothing changes before the owner confirms

    page.get_by_role("button", name=_("Confirm the switch")).click()
    annual = f"Pro, {_('billed annually')}"
    if js:  # the page polls and reloads once Stripe has the change
        expect(page.locator("#billing-plan")).to_have_text(annual, timeout=15_000)
        expect(
            page.get_by_text(
                _(
                    "The team's plan is now %(plan)s, billed %(cycle)s.",
                    plan="Pro",
                    cycle=_("annually"),
                )
            )
        ).to_be_visible()
    else:  # the page says "updating…" with a reload link, unless the worker was quicker

        def reloaded_shows_annual() -> bool:  # what a user does: reload until it says so
            page.goto(live.url + "/settings/teams/billing")
            return page.locator("#billing-plan").inner_text().strip() == annual

        assert eventually(reloaded_shows_annual, timeout=15)
    assert price_of_subscription() == "pro_year"
    shot(f"plan-changed-{lang}")
