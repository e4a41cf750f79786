import re

from playwright.sync_api import Page, expect


def test_sign_up_verify_log_in_switch_to_danish_and_subscribe_to_pro(
    page: Page, live, live_stripe, shot
):
    page.goto(live.url + "/signup")
    page.get_by_label("Your name").fill("Mette Hansen")
    page.get_by_label("Work email").fill("mette@klinik.example")
    page.get_by_label("Password").fill("morning coffee at the clinic")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()

    message = live.wait_for_mail("mette@klinik.example", "Confirm your email")
    page.goto(live.link_in(message, "/verify/"))
    expect(page.get_by_text("Your email address is confirmed")).to_be_visible()
    expect(page.get_by_label("Email")).to_have_value("mette@klinik.example")
    page.get_by_label("Password").fill("morning coffee at the clinic")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Your plan: Free")).to_be_visible()
    shot("account-en")

    page.get_by_role("button", name="Dansk").click()
    expect(page.get_by_role("heading", name="Dit abonnement: Free")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "da")
    page.get_by_role("button", name=re.compile("Månedligt")).first.click()

    expect(page).to_have_url(re.compile(r"/checkout/cs_test_"))
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Clinic legal name").fill("Klinik Hansen ApS")
    page.get_by_label("VAT / CVR number (e.g. DK12345678)").fill("DK12345678")
    shot("checkout")
    page.get_by_role("button", name="Pay and subscribe").click()

    # The portal waits for Stripe's signed webhook, then shows the plan.
    expect(page.get_by_role("heading", name="Dit abonnement: Pro")).to_be_visible(timeout=15_000)
    expect(page.get_by_text("Velkommen til Pro!")).to_be_visible()
    expect(page.get_by_text("Faktureres månedligt.")).to_be_visible()
    shot("account-pro-da")
    [subscription] = live_stripe.list("subscriptions")
    assert subscription["status"] == "active"
    customer = live_stripe.get(f"/v1/customers/{subscription['customer']}")
    assert customer["name"] == "Klinik Hansen ApS"
