import pytest
from playwright.sync_api import expect

from portal.billing.service import period_total
from portal.i18n import money


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_the_calculator_and_the_contact_form(browser, live, live_stripe, js, shot):
    context = browser.new_context(java_script_enabled=js)
    page = context.new_page()
    page.goto(live.url + "/plans")
    expect(page.get_by_role("heading", name="Which option fits my team?")).to_be_visible()
    page.get_by_role("spinbutton", name="Clinicians").fill("12")
    page.get_by_role("spinbutton", name="Assistants").fill("3")
    if not js:
        page.get_by_role("button", name="Calculate").click()
    with live.app.test_request_context():
        expected = money(period_total("practice", "month", 12))
    expect(page.locator("#estimate-practice")).to_contain_text(expected)
    expect(page.locator("#estimate")).to_contain_text("For 12 clinicians, 3 assistants")
    shot("plans")
    page.get_by_role("link", name="Contact sales").click()
    page.get_by_label("Your name").fill("Signe Storm")
    page.get_by_label("Work email").fill("signe@storklinik.example")
    page.get_by_label("Clinic", exact=True).fill("Stor Klinik")
    page.get_by_label("Number of clinicians").fill("0")
    page.get_by_role("button", name="Send to sales").click()
    expect(page.locator("#clinicians-error")).to_contain_text("Enter a number from 1 upwards.")
    page.get_by_label("Number of clinicians").fill("24")
    page.get_by_role("button", name="Send to sales").click()
    expect(page.get_by_role("heading", name="Thank you, Signe Storm")).to_be_visible()
    message = live.wait_for_mail(live.app.config["SALES_EMAIL"], "Stor Klinik")
    assert "24" in message["Subject"]
    context.close()
