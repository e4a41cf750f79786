"""An admin onboards a clinic from a spreadsheet: pastes a list with names, then uploads a CSV
on its own page (linked from the invite box), checks the preview (a row per person, a role per row, the price) and sends. In English with
JavaScript, in Danish without it; and the team page fits a 390 px phone."""

import pytest
from playwright.sync_api import Page, expect

from devtools.provision import provision_subscription
from portal.auth.models import User
from portal.auth.service import create_user
from portal.clock import utcnow
from portal.extensions import db
from portal.teams import service as teams

PASSWORD = "morning coffee at the clinic"
OWNER = "olga@klinik.example"
CSV = (
    "email,name,role\n"
    "anna@klinik.example,Anna Jensen,admin\n"
    "bo@klinik.example,Bo Hansen,\n"
    "karin@klinik.example,Karin Holm,assistant\n"
    "not-an-address,Nobody,\n"
)
WORDS = {
    "en": {
        "upload": "Inviting many people? Upload a CSV file",
        "file": "CSV file",
        "preview": "Preview invitations",
        "check": "Check the invitations before they go out",
        "price": "When everyone accepts, the team has 3 paid seats",
        "send": "Send 3 invitations",
        "invalid": "not a valid email address",
        "role_for": "Role for bo@klinik.example",
        "member": "Member",
        "sent": "Invitation sent to anna@klinik.example.",
        "addresses": "Email addresses",
        "price_line": "At 4 paid seats",
    },
    "da": {
        "upload": "Inviterer du mange? Upload en CSV-fil",
        "file": "CSV-fil",
        "preview": "Se invitationerne først",
        "check": "Tjek invitationerne, før de sendes",
        "price": "Når alle har accepteret, har teamet 3 betalte pladser",
        "send": "Send 3 invitationer nu",
        "invalid": "ikke en gyldig e-mailadresse",
        "role_for": "Rolle for bo@klinik.example",
        "member": "Medlem",
        "sent": "Invitation sendt til anna@klinik.example.",
        "addresses": "E-mailadresser",
        "price_line": "Med 4 betalte pladser",
    },
}


def make_team(live, locale: str) -> None:
    now = utcnow()
    with live.app.test_request_context():
        olga = create_user(
            name="Olga Owner", email=OWNER, password=PASSWORD, locale=locale, now=now, verified=True
        )
        db.session.commit()
        provision_subscription(db.session.get(User, olga.id), plan="practice", interval="month")
        teams.create_team(db.session.get(User, olga.id), "Klinik Nord", now=now)
        db.session.commit()


def log_in(page: Page, live) -> None:
    """The login page follows the browser's language (English here); the portal then speaks
    the account's language."""
    page.goto(live.url + "/login")
    page.get_by_label("Email").fill(OWNER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


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
def test_an_admin_previews_a_csv_and_sends_the_invitations(
    page: Page, live, live_stripe, shot, tmp_path, lang: str, js: bool
):
    t = WORDS[lang]
    make_team(live, lang)
    log_in(page, live)
    page.goto(live.url + "/settings/teams")
    if js:  # the price line follows what is pasted
        page.get_by_label(t["addresses"], exact=True).fill(
            "Anna Jensen <anna@klinik.example>; Bo <bo@klinik.example>\nkim@klinik.example"
        )
        expect(page.locator("#invite-price")).to_contain_text(t["price_line"])
        page.get_by_label(t["addresses"], exact=True).fill("")
    upload = tmp_path / "klinik.csv"
    upload.write_text(CSV)
    page.get_by_role("link", name=t["upload"]).click()  # the upload has a page of its own
    page.get_by_label(t["file"], exact=True).set_input_files(str(upload))
    page.get_by_role("button", name=t["preview"]).click()

    expect(page.get_by_role("heading", name=t["check"])).to_be_visible()
    preview = page.locator("table.preview tbody tr")
    expect(preview).to_have_count(4)
    expect(preview.filter(has_text="not-an-address")).to_contain_text(t["invalid"])
    expect(page.locator("#preview-price")).to_contain_text(t["price"])
    shot(f"bulk-preview-{lang}")
    # A role per row: Karin's row came as an assistant; Bo's gets one here.
    page.get_by_label(t["role_for"]).select_option(label=t["member"])
    page.get_by_role("button", name=t["send"]).click()

    # Sending leaves the upload page for the team page, which says what happened per address.
    expect(page.locator("#flash")).to_contain_text(t["sent"])
    assert live.wait_for_mail("anna@klinik.example", "Klinik Nord")
    expect(page.locator("#invitations tbody tr")).to_have_count(3)
    shot(f"bulk-sent-{lang}")


@pytest.mark.browser_context_args(viewport={"width": 390, "height": 844})
def test_the_team_page_fits_a_phone(page: Page, live, live_stripe, shot):
    make_team(live, "en")
    log_in(page, live)
    page.goto(live.url + "/settings/teams")
    page.get_by_label("Email addresses", exact=True).fill("anna@klinik.example bo@klinik.example")
    page.get_by_role("button", name="Send invitations").click()
    expect(page.locator("#invitations tbody tr")).to_have_count(2)
    for path in ("/settings/teams", "/settings/teams/audit", "/settings/teams/billing"):
        page.goto(live.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
        shot("phone" + path.replace("/", "-"))
