"""An admin builds a team in the browser: create, invite, join, resend, revoke, remove.

The same journey runs with JavaScript (htmx swaps fragments, hx-confirm asks) and without it
(plain forms, a member page and a confirmation page for Remove, 303 back to the team page after every action).
"""

import re
import time

import pytest
from playwright.sync_api import Browser, Page, Response, expect

from devtools.provision import provision_subscription
from portal.auth.models import User
from portal.auth.service import create_user
from portal.clock import utcnow
from portal.extensions import db
from tests.browser.conftest import SHOTS

PASSWORD = "morning coffee at the clinic"
TEAM = "Nørrebro Klinik"
ADMIN = "olga@klinik.example"
SUBJECT = f"invited you to join {TEAM}"


def make_users(live, erik: str) -> None:
    """The admin (on Pro) and a colleague who already has an account; no team yet."""
    with live.app.test_request_context():
        olga = create_user(
            name="Olga Owner",
            email=ADMIN,
            password=PASSWORD,
            locale="en",
            now=utcnow(),
            verified=True,
        )
        create_user(
            name="Erik Eriksen",
            email=erik,
            password=PASSWORD,
            locale="en",
            now=utcnow(),
            verified=True,
        )
        db.session.commit()
        provision_subscription(db.session.get(User, olga.id), plan="pro", interval="month")
        db.session.commit()


def mails_to(live, to: str, count: int, timeout: float = 10) -> list:
    """Wait until `count` invitation emails reached `to`; return them, oldest first."""
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in live.mail.messages if m["To"] == to and SUBJECT in m["Subject"]]
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) >= count, f"{len(found)} of {count} emails to {to}"
            return found
        time.sleep(0.1)


def invitation_link(live, to: str) -> str:
    return live.link_in(live.wait_for_mail(to, SUBJECT), "/invitations/")


def snap(page: Page, request, name: str) -> None:
    """Like the `shot` fixture, for the pages of the invitees' own browser contexts."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{request.node.name}-{name}.png"), full_page=True)


def submit(page: Page, js: bool, click) -> None:
    """Do an action on the team page: with JavaScript htmx posts and swaps in place (200);
    without it the form posts and is sent back to the team page with a 303."""
    if js:
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            click()
        assert posted.value.request.headers.get("hx-request") == "true"
        assert posted.value.status == 200, posted.value.url
        return
    with page.expect_navigation() as navigation:
        click()
    response: Response = navigation.value
    hop = response.request.redirected_from
    assert hop is not None and hop.method == "POST", response.url
    assert hop.response().status == 303
    assert response.url.endswith("/settings/teams")
    assert response.status == 200


def invite(page: Page, js: bool, *addresses: str) -> None:
    page.get_by_label("Email addresses").fill(",\n".join(addresses))
    submit(page, js, page.get_by_role("button", name="Send invitations").click)
    for address in addresses:
        if js:  # the form answers with one line per address
            result = (
                page.get_by_role("list", name="Result per address")
                .get_by_role("listitem")
                .filter(has_text=address)
            )
        else:  # the page after the redirect says it in a flash message
            result = page.locator("#flash").get_by_text(f"Invitation sent to {address}.")
        expect(result).to_contain_text("invitation sent", ignore_case=True)
        expect(pending_row(page, address)).to_be_visible()


def pending_row(page: Page, address: str):
    return page.locator("#invitations tbody tr").filter(has_text=address)


def member_row(page: Page, name: str):
    return page.locator("#members tbody tr").filter(has_text=name)


def confirm_next_dialog(page: Page, js: bool) -> list[str]:
    """With JavaScript, htmx asks first (hx-confirm): accept; the list gets what it asked."""
    asked = []
    if js:

        def accept(dialog):
            asked.append(dialog.message)
            dialog.accept()

        page.once("dialog", accept)
    return asked


@pytest.mark.parametrize(
    "js",
    [
        pytest.param(True, id="js"),
        pytest.param(
            False, id="nojs", marks=pytest.mark.browser_context_args(java_script_enabled=False)
        ),
    ],
)
def test_admin_creates_team_invites_and_manages_members(
    page: Page, browser: Browser, live, live_stripe, shot, request, js: bool
):
    tag = "js" if js else "nojs"
    nina, erik = f"nina.{tag}@klinik.example", f"erik.{tag}@klinik.example"
    karen, lars = f"karen.{tag}@klinik.example", f"lars.{tag}@klinik.example"
    make_users(live, erik)
    contexts = []

    def new_page():
        context = browser.new_context(java_script_enabled=js)
        contexts.append(context)
        return context.new_page()

    try:
        # 2. The admin logs in and creates the team from Settings → Teams.
        page.goto(live.url + "/login")
        page.get_by_label("Email").fill(ADMIN)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Your plan: Pro")).to_be_visible()
        page.get_by_role("navigation", name="Settings").get_by_role("link", name="Teams").click()
        expect(page.get_by_role("heading", name="Create a team")).to_be_visible()
        page.get_by_label("Team name").fill(TEAM)
        page.get_by_role("button", name="Create team").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(TEAM)
        expect(page.get_by_text(f"Team {TEAM} is created.")).to_be_visible()
        expect(page.locator("#seat-summary")).to_contain_text("1 member")

        # 3. Two addresses at once: a new person and someone with an account.
        invite(page, js, nina, erik)
        shot("admin-invited")

        # 4. Nina has no account: the invitation page creates one and joins.
        nina_page = new_page()
        nina_page.goto(invitation_link(live, nina))
        expect(nina_page.get_by_role("heading", name=f"Join {TEAM}")).to_be_visible()
        email_field = nina_page.get_by_label("Email", exact=True)
        expect(email_field).to_have_value(nina)
        expect(email_field).not_to_be_editable()
        snap(nina_page, request, "invitation-signup")
        nina_page.get_by_label("Your name").fill("Nina Nielsen")
        nina_page.get_by_label("Choose a password").fill(PASSWORD)
        nina_page.get_by_role("button", name="Create account and join").click()
        expect(nina_page.get_by_role("heading", level=1)).to_have_text(TEAM)
        expect(nina_page.get_by_text(f"Welcome to {TEAM}!")).to_be_visible()
        expect(member_row(nina_page, "Nina Nielsen")).to_contain_text("(you)")
        snap(nina_page, request, "nina-joined")

        # 5. Erik has an account: he logs in from the invitation and accepts.
        erik_page = new_page()
        erik_page.goto(invitation_link(live, erik))
        expect(erik_page.get_by_text("Log in to accept.")).to_be_visible()
        erik_page.get_by_role("link", name="Log in to accept").click()
        expect(erik_page.get_by_label("Email")).to_have_value(erik)
        erik_page.get_by_label("Password").fill(PASSWORD)
        erik_page.get_by_role("button", name="Log in").click()
        accept = erik_page.get_by_role("button", name=f"Accept and join {TEAM}")
        expect(accept).to_be_visible()
        snap(erik_page, request, "invitation-accept")
        accept.click()
        expect(erik_page.get_by_role("heading", level=1)).to_have_text(TEAM)
        expect(member_row(erik_page, "Erik Eriksen")).to_contain_text("(you)")

        # The admin's page, reloaded, shows both as members and no pending invitations.
        page.reload()
        expect(member_row(page, "Nina Nielsen")).to_be_visible()
        expect(member_row(page, "Erik Eriksen")).to_be_visible()
        expect(page.locator("#seat-summary")).to_contain_text("3 members")
        expect(page.locator("#invitations")).to_contain_text("No pending invitations.")

        # 6. Two more invitations; Karen's is resent, so her first link stops working.
        invite(page, js, karen, lars)
        old_link = invitation_link(live, karen)
        submit(page, js, page.get_by_role("button", name=f"Resend {karen}").click)
        expect(page.locator("#flash")).to_contain_text(
            f"Invitation sent again to {karen}. The earlier link no longer works."
        )
        first, latest = mails_to(live, karen, 2)[:2]
        assert live.link_in(first, "/invitations/") == old_link
        new_link = live.link_in(latest, "/invitations/")
        assert new_link != old_link
        expect(pending_row(page, karen)).to_be_visible()

        karen_page = new_page()
        response = karen_page.goto(old_link)
        snap(karen_page, request, "invitation-old-link")
        assert response.status == 410
        expect(
            karen_page.get_by_role("heading", name="This invitation is no longer valid")
        ).to_be_visible()
        response = karen_page.goto(new_link)
        assert response.status == 200
        expect(karen_page.get_by_role("heading", name=f"Join {TEAM}")).to_be_visible()
        expect(karen_page.get_by_label("Email", exact=True)).to_have_value(karen)

        # Lars's invitation is revoked: his row goes away.
        asked = confirm_next_dialog(page, js)
        submit(page, js, pending_row(page, lars).get_by_role("button", name="Revoke").click)
        assert asked == (
            [f"Revoke the invitation to {lars}? The link stops working."] if js else []
        )
        expect(pending_row(page, lars)).to_have_count(0)
        expect(pending_row(page, karen)).to_be_visible()
        expect(page.locator("#flash")).to_contain_text(f"Invitation to {lars} revoked.")

        # Nina is removed: her row goes, and the seat summary counts one member less.
        expect(page.locator("#seat-summary")).to_contain_text("3 members · 3 paid seats")
        manage = member_row(page, "Nina Nielsen").get_by_role(
            "button", name="Change role or remove Nina Nielsen"
        )
        if js:
            manage.click()  # the row turns into its editor, in place
            editor = page.locator("tr.editing")
            expect(editor).to_contain_text("Nina Nielsen")
            expect(editor.get_by_label("Role")).to_be_focused()
            shot("member-editor")
            editor.get_by_role("link", name="Remove from team").click()
            # The confirmation comes in the row, with what it changes on the invoice.
            confirm = page.locator("tr.editing")
            expect(confirm.get_by_role("heading", name="Remove Nina Nielsen?")).to_be_visible()
            expect(confirm.locator("#price-preview")).to_contain_text("recurring total")
            submit(page, js, confirm.get_by_role("button", name="Remove Nina Nielsen").click)
        else:
            manage.click()
            expect(page).to_have_url(re.compile(r"/settings/teams/members/\d+$"))
            page.get_by_role("link", name="Remove from team").click()
            expect(page).to_have_url(re.compile(r"/settings/teams/members/\d+/remove$"))
            expect(page.get_by_role("heading", name="Remove Nina Nielsen?")).to_be_visible()
            shot("remove-confirm")
            submit(page, js, page.get_by_role("button", name="Remove Nina Nielsen").click)
        expect(member_row(page, "Nina Nielsen")).to_have_count(0)
        expect(member_row(page, "Erik Eriksen")).to_be_visible()
        expect(page.locator("#seat-summary")).to_contain_text("2 members · 2 paid seats")
        # The list's own count and the invite box's price follow, with JS as without.
        expect(page.locator("#member-status")).to_have_text("2 members")
        expect(page.locator("#invite-price")).to_contain_text("At 3 paid seats")
        if js:
            expect(page.locator("#member-status")).to_be_focused()
        expect(page.locator("#flash")).to_contain_text(
            "Nina Nielsen was removed from the team and is back on Free."
        )
        shot("admin-team")

        # Nina, still logged in, no longer sees the team.
        nina_page.reload()
        expect(nina_page.get_by_role("heading", name="Teams", exact=True)).to_be_visible()
    finally:
        for context in contexts:
            context.close()
