"""Two-step sign-in in a real browser, with pyotp computing the codes as a phone would.

(a) Clara sets it up from her account page (QR code, the key as text, a first code, the
recovery codes shown once and downloaded), logs out, logs in with a code, and later with a
recovery code. (b) Olga, an admin who uses it, requires it for the team; Mads, who reads the
portal in Danish, is sent to set-up when he logs in, sets it up, and the portal opens again.
"""

import re
from datetime import timedelta

import pyotp
from playwright.sync_api import Browser, Page, expect

from devtools.provision import provision_subscription
from portal.auth.models import User
from portal.clock import utcnow
from portal.extensions import db
from portal.teams.models import Membership
from portal.teams.service import create_team
from portal.twofa import service
from tests.browser.test_billing_journey import log_in, snap
from tests.browser.test_ownership_journey import PASSWORD, make_user

CLARA = "clara@klinik.example"
OLGA = "olga@klinik.example"
MADS = "mads@klinik.example"
TEAM = "Klinik Vest"


def next_code(secret: str) -> str:
    """The code of the next 30-second step: the current one may be spent already (a code
    works once), and the portal accepts one step either side of now."""
    return pyotp.TOTP(secret).at(utcnow() + timedelta(seconds=30))


def test_set_up_log_out_log_in_with_a_code_then_with_a_recovery_code(
    page: Page, live, live_stripe, shot, tmp_path
):
    with live.app.test_request_context():
        make_user("Clara Clinician", CLARA)

    page.goto(live.url + "/login")
    log_in(page, CLARA)
    expect(page.get_by_role("heading", name="Two-step sign-in")).to_be_visible()
    page.locator("#two-step").get_by_role("link", name="Set up two-step sign-in").click()

    # 1. The QR code (made by the portal, inline) and the key as text; a first code turns it on.
    expect(page.locator("#two-factor svg")).to_be_visible()
    secret = page.locator("#two-factor-secret").inner_text().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    shot("setup")
    page.get_by_label("Code from the app").fill("000000" if next_code(secret) != "000000" else "1")
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(page.locator("#code-error")).to_contain_text("That code is not right")
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    codes = page.locator("#recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download the codes (.txt)").click()
    saved = tmp_path / "codes.txt"
    download_info.value.save_as(saved)
    assert download_info.value.suggested_filename == "clinic-teams-recovery-codes.txt"
    assert all(code in saved.read_text() for code in codes)
    shot("codes")
    mail = live.wait_for_mail(CLARA, "Two-step sign-in was turned on")
    assert "If this was not you" in live.mail.body(mail)

    # 2. Log out, log in: the password, then a code from the app.
    page.get_by_role("button", name="Log out").click()
    page.goto(live.url + "/login")
    log_in(page, CLARA)
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    page.get_by_label("Code from the app, or a recovery code").fill(next_code(secret))
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(live.url + "/settings/account")
    expect(page.locator("#two-step")).to_contain_text("On")

    # 3. Phone left at home: a recovery code, which then no longer works.
    page.get_by_role("button", name="Log out").click()
    page.goto(live.url + "/login")
    log_in(page, CLARA)
    page.get_by_label("Code from the app, or a recovery code").fill(codes[0])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("You used a recovery code: 9 are left.")).to_be_visible()
    shot("recovery-login")
    page.get_by_role("button", name="Log out").click()
    page.goto(live.url + "/login")
    log_in(page, CLARA)
    page.get_by_label("Code from the app, or a recovery code").fill(codes[0])
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#code-error")).to_contain_text("not right, or it was used already")

    # 4. Deleting the account takes a code as well as the password.
    page.get_by_label("Code from the app, or a recovery code").fill(codes[1])
    page.get_by_role("button", name="Log in").click()
    page.locator("#your-data").get_by_role("link", name="Delete my account").click()
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Delete my account").click()
    expect(page.locator("#code-error")).to_have_text("Enter the code.")
    page.get_by_label("Your password").fill(PASSWORD)  # a password field is never sent back
    # (The app's code of this step was used to log in above, so a recovery code.)
    page.get_by_label("Code from the app, or a recovery code").fill(codes[2])
    page.get_by_role("button", name="Delete my account").click()
    expect(page).to_have_url(live.url + "/goodbye")


def test_an_admin_requires_two_factor_and_a_member_is_sent_to_set_up(
    page: Page, browser: Browser, live, live_stripe, shot, request
):
    with live.app.test_request_context():
        olga = make_user("Olga Owner", OLGA)
        mads = make_user("Mads Madsen", MADS)
        db.session.get(User, mads).locale = "da"
        owner = db.session.get(User, olga)
        provision_subscription(owner, plan="pro", interval="month")
        db.session.commit()
        team = create_team(owner, TEAM, now=utcnow())
        db.session.add(Membership(team=team, user_id=mads, role="member", created_at=utcnow()))
        secret = service.begin_setup(owner, now=utcnow())
        service.confirm_setup(owner, pyotp.TOTP(secret).now(), now=utcnow())
        db.session.commit()

    # 1. Olga logs in with her code and requires two-step sign-in, after the confirm step.
    page.goto(live.url + "/login")
    log_in(page, OLGA)
    page.get_by_label("Code from the app, or a recovery code").fill(next_code(secret))
    page.get_by_role("button", name="Log in").click()
    page.goto(live.url + "/settings/teams/settings")
    page.get_by_role("link", name="Require two-step sign-in…").click()
    expect(page.locator("#missing-two-factor")).to_contain_text(f"Mads Madsen ({MADS})")
    shot("confirm")
    page.get_by_role("button", name="Require two-step sign-in").click()
    expect(
        page.get_by_text("Two-step sign-in is now required. We emailed the 1 member")
    ).to_be_visible()
    expect(page.locator("#team-two-factor")).to_contain_text("Every member must use")
    page.goto(live.url + "/settings/teams")
    expect(page.locator("#members")).to_contain_text("No 2FA")
    mail = live.wait_for_mail(MADS, "kræver nu totrinslogin")  # in his language
    assert "/settings/account/two-factor/setup" in live.mail.body(mail)

    # 2. Mads logs in and can reach only set-up (in Danish) until he has done it.
    context = browser.new_context()
    try:
        mads_page = context.new_page()
        mads_page.goto(live.url + "/login")
        log_in(mads_page, MADS)
        expect(mads_page).to_have_url(live.url + "/settings/account/two-factor/setup")
        expect(mads_page.locator("#two-factor-required")).to_contain_text(
            f"{TEAM} kræver totrinslogin"
        )
        mads_page.goto(live.url + "/settings/teams")
        expect(mads_page).to_have_url(live.url + "/settings/account/two-factor/setup")
        snap(mads_page, request, "held-da")
        his_secret = mads_page.locator("#two-factor-secret").inner_text().replace(" ", "")
        mads_page.get_by_label("Kode fra appen").fill(pyotp.TOTP(his_secret).now())
        mads_page.get_by_role("button", name="Slå totrinslogin til").click()
        expect(mads_page.get_by_role("heading", name="Dine gendannelseskoder")).to_be_visible()
        mads_page.goto(live.url + "/settings/teams")
        expect(mads_page).to_have_url(live.url + "/settings/teams")
    finally:
        context.close()
    page.reload()
    expect(page.locator("#members")).not_to_contain_text("No 2FA")
