"""Account journeys: change the email address (confirm from the new inbox, undo from the old),
and delete the account (see what is kept, confirm with the password, the goodbye page)."""

import re

from playwright.sync_api import Browser, Page, expect

from devtools.provision import provision_subscription
from portal.auth.models import User
from portal.auth.service import create_user
from portal.billing import seats
from portal.clock import utcnow
from portal.extensions import db
from portal.teams.models import Membership
from portal.teams.service import create_team
from tests.browser.test_billing_journey import eventually, log_in, quantity, snap

PASSWORD = "morning coffee at the clinic"
OLD = "anna@vest.example"
NEW = "anna.jensen@vest.example"


def make_user(name: str, email: str, locale: str = "en") -> int:
    user = create_user(
        name=name, email=email, password=PASSWORD, locale=locale, now=utcnow(), verified=True
    )
    db.session.commit()
    return user.id


def test_change_email_confirm_from_the_new_inbox_and_undo_from_the_old(
    page: Page, browser: Browser, live, live_stripe, shot, request
):
    with live.app.test_request_context():
        make_user("Anna Jensen", OLD)

    # 1. Anna asks for the change on her account page (htmx swaps the section).
    page.goto(live.url + "/login")
    log_in(page, OLD)
    expect(page).to_have_url(live.url + "/settings/account")
    section = page.locator("#email-change")
    section.get_by_label("New email address").fill(NEW)
    section.get_by_label("Current password").fill("not my password")
    section.get_by_role("button", name="Change email address").click()
    expect(section.locator("#email-change-password-error")).to_have_text(
        "This is not your current password."
    )
    section.get_by_label("Current password").fill(PASSWORD)
    section.get_by_role("button", name="Change email address").click()
    expect(page.locator("#email-change-sent")).to_contain_text(
        f"Check the new inbox: we sent a link to {NEW}."
    )
    expect(section).to_contain_text(f"Your address: {OLD}")  # nothing changed yet
    shot("asked")

    # 2. The link in the new inbox, opened in a Danish browser: the page asks to confirm.
    mail = live.wait_for_mail(NEW, "Confirm your new email address")
    link = live.link_in(mail, "/email/confirm/")
    context = browser.new_context(locale="da-DK")
    try:
        danish = context.new_page()
        danish.goto(link)
        expect(danish.get_by_role("heading", name="Bekræft din nye e-mailadresse")).to_be_visible()
        snap(danish, request, "confirm-da")
        danish.get_by_role("button", name=f"Brug {NEW}").click()
        expect(danish.get_by_text(f"Din e-mailadresse er nu {NEW}.")).to_be_visible()
        expect(danish.get_by_label("E-mail")).to_have_value(NEW)  # log in with the new one
    finally:
        context.close()

    # 3. Anna's account page shows the new address; the old address was told, with an undo.
    page.reload()
    expect(page.locator("#email-change")).to_contain_text(f"Your address: {NEW}")
    told = live.wait_for_mail(OLD, "Your email address was changed")
    body = live.mail.body(told)
    assert f"from {OLD} to {NEW}" in body
    undo = live.link_in(told, "/email/undo/")
    shot("changed")

    # 4. The undo link: the old address comes back, every session ends, a new password next.
    page.goto(undo)
    expect(page.get_by_role("heading", name="Undo the change of email address")).to_be_visible()
    page.get_by_role("button", name="Undo and sign out everywhere").click()
    expect(page).to_have_url(re.compile(r"/password/reset/"))
    expect(page.get_by_text(f"Your email address is {OLD} again")).to_be_visible()
    shot("undone")
    page.goto(live.url + "/settings/account")
    expect(page).to_have_url(re.compile(r"/login"))


def test_delete_account_shows_what_is_kept_and_ends_on_the_goodbye_page(
    page: Page, live, live_stripe, shot
):
    with live.app.test_request_context():
        owner = make_user("Olga Owner", "olga@vest.example")
        mads = make_user("Mads Member", "mads@vest.example")
        provision_subscription(db.session.get(User, owner), plan="pro", interval="month")
        db.session.commit()
        team = create_team(db.session.get(User, owner), "Klinik Vest", now=utcnow())
        db.session.add(Membership(team=team, user_id=mads, role="member", created_at=utcnow()))
        seats.seats_changed(team, now=utcnow())  # Mads's seat, as accepting would
        db.session.commit()
        subscription = team.subscription.stripe_subscription_id
    eventually(lambda: quantity(live_stripe, subscription) == 2)

    page.goto(live.url + "/login")
    log_in(page, "mads@vest.example")
    page.locator("#your-data").get_by_role("link", name="Delete my account").click()
    expect(page.get_by_role("heading", name="Delete your account", exact=True)).to_be_visible()
    expect(page.locator("#what-happens")).to_contain_text("You leave the team Klinik Vest")
    kept = page.locator("#what-is-kept")
    expect(kept).to_contain_text("bookkeeping law requires us to keep them for 5 years")
    expect(kept).to_contain_text('"deleted user"')
    shot("what-is-kept")
    page.get_by_label("Your password").fill("wrong password")
    page.get_by_role("button", name="Delete my account").click()
    expect(page.locator("#password-error")).to_have_text("This is not your current password.")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Delete my account").click()
    expect(page).to_have_url(live.url + "/goodbye")
    expect(page.get_by_role("heading", name="Your account is deleted")).to_be_visible()
    shot("goodbye")
    live.wait_for_mail("mads@vest.example", "Your account is deleted")
    eventually(lambda: quantity(live_stripe, subscription) == 1)
    page.goto(live.url + "/settings/account")
    expect(page).to_have_url(re.compile(r"/login"))
