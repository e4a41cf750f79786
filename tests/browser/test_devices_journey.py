"""Signed-in devices: Anna is logged in on her laptop and on her phone; from the laptop's
account page she signs the phone out, and the phone is sent to the log-in page at its next
click. In Danish she then signs out all other devices, and finally everywhere, without
JavaScript on the device that does it. Those two ask for her password first, as they do 15
minutes after a log-in (the test makes every log-in that old).
"""

import re
from datetime import timedelta

from playwright.sync_api import Browser, Page, expect

from portal.auth import reauth
from portal.auth.service import create_user
from portal.clock import utcnow
from portal.extensions import db
from tests.browser.test_billing_journey import log_in, snap

PASSWORD = "morning coffee at the clinic"
ANNA = "anna@devices.example"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like"
    " Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)


def test_anna_signs_out_her_phone_from_the_laptop(
    page: Page, browser: Browser, live, live_stripe, shot, request, monkeypatch
):
    with live.app.test_request_context():
        create_user(
            name="Anna", email=ANNA, password=PASSWORD, locale="en", now=utcnow(), verified=True
        )
        db.session.commit()

    # 1. Anna logs in on the laptop (this browser) and on her phone (its own context).
    page.goto(live.url + "/login")
    log_in(page, ANNA)
    expect(page).to_have_url(live.url + "/settings/account")
    phone_context = browser.new_context(user_agent=IPHONE)
    try:
        phone = phone_context.new_page()
        phone.goto(live.url + "/login")
        log_in(phone, ANNA)
        expect(phone).to_have_url(live.url + "/settings/account")

        # 2. The laptop's account page lists both; the laptop is "this device".
        page.reload()
        devices = page.locator("#devices")
        expect(devices.get_by_role("heading", name="Signed-in devices")).to_be_visible()
        this_row = devices.locator("tbody tr").first
        expect(this_row).to_contain_text("Chrome on Linux")
        expect(this_row).to_contain_text("This device")
        expect(devices).to_contain_text("Safari on iPhone")
        expect(devices).to_contain_text("127.0.0.1")
        shot("two-devices")

        # 3. She signs the phone out (htmx): the list comes back without it, the message is
        # shown and read out, and focus goes to the list's heading.
        devices.get_by_role("button", name=re.compile(r"^Sign out Safari on iPhone")).click()
        expect(page.locator("#flash")).to_have_text("Safari on iPhone is signed out.")
        expect(page.locator("#announcer")).to_have_text("Safari on iPhone is signed out.")
        expect(devices).not_to_contain_text("Safari on iPhone")
        expect(devices).to_contain_text("You are not signed in on any other device.")
        expect(page.locator("#devices-title")).to_be_focused()
        expect(page).to_have_url(live.url + "/settings/account")
        shot("phone-signed-out")

        # 4. The phone's next click lands on the log-in page.
        phone.get_by_role("navigation", name="Settings").get_by_role(
            "link", name="Sessions"
        ).click()
        expect(phone).to_have_url(re.compile(r"/login\?next="))
        expect(phone.get_by_text("Log in to continue.")).to_be_visible()
        snap(phone, request, "phone-at-login")

        # 5. The phone logs in again; on the laptop, in Danish, Anna signs out all others.
        log_in(phone, ANNA)
        expect(phone).to_have_url(re.compile(r"/sessions"))
        page.get_by_role("button", name="Dansk").click()
        expect(devices.get_by_role("heading", name="Enheder, du er logget ind på")).to_be_visible()
        expect(devices.locator("tbody tr").first).to_contain_text("Denne enhed")
        expect(devices).to_contain_text("Safari på iPhone")
        expect(devices).to_contain_text("IP-adresse")
        shot("danish")
        monkeypatch.setattr(reauth, "FRESH_FOR", timedelta(0))  # as if 15 minutes had passed
        devices.get_by_role("button", name="Log alle andre enheder ud").click()
        expect(devices.get_by_role("heading", name="Bekræft, at det er dig")).to_be_visible()
        expect(page.locator("#announcer")).to_have_text("Skriv din adgangskode for at fortsætte.")
        expect(devices.get_by_label("Din adgangskode")).to_be_focused()
        devices.get_by_label("Din adgangskode").fill("forkert")
        devices.get_by_role("button", name="Log alle andre enheder ud").click()
        expect(devices.locator("#confirm-password-error")).to_have_text(
            "Det er ikke din nuværende adgangskode."
        )
        shot("confirm-it-is-you-da")
        devices.get_by_label("Din adgangskode").fill(PASSWORD)
        devices.get_by_role("button", name="Log alle andre enheder ud").click()
        expect(page.locator("#flash")).to_have_text("1 anden enhed er logget ud.")
        expect(devices).to_contain_text("Du er ikke logget ind på andre enheder.")
        phone.reload()
        expect(phone).to_have_url(re.compile(r"/login\?next="))
    finally:
        phone_context.close()

    # 6. Without JavaScript, on a third browser, she signs out everywhere: every device. Her
    # account speaks Danish now (she chose it on the laptop).
    plain_context = browser.new_context(java_script_enabled=False)
    try:
        plain = plain_context.new_page()
        plain.goto(live.url + "/login")
        log_in(plain, ANNA)
        expect(plain).to_have_url(live.url + "/settings/account")
        plain.get_by_role("button", name="Log ud overalt").click()
        expect(plain.get_by_role("heading", name="Bekræft, at det er dig", level=1)).to_be_visible()
        plain.get_by_label("Din adgangskode").fill(PASSWORD)
        plain.get_by_role("button", name="Log ud overalt").click()
        expect(plain).to_have_url(live.url + "/login")
        expect(plain.get_by_text("Du er logget ud på alle enheder.")).to_be_visible()
        snap(plain, request, "signed-out-everywhere")
        page.reload()
        expect(page).to_have_url(re.compile(r"/login\?next="))
    finally:
        plain_context.close()
