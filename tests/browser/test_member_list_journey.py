"""An admin of a 120-member team pages through the member list, searches it, filters it by
role and sorts it by a column: with JavaScript htmx swaps the list in place and pushes the
page's URL; without it the pager links, the search form and the column headers are plain GETs
of the same URLs."""

import re

import pytest
from playwright.sync_api import Page, expect

from devtools.provision import provision_subscription
from portal.auth.models import User
from portal.auth.service import create_user
from portal.clock import utcnow
from portal.extensions import db
from portal.teams import service as teams
from portal.teams.models import Membership
from tests.browser.conftest import words

PASSWORD = "morning coffee at the clinic"
OWNER = "olga@klinik.example"


def make_big_team(live, locale: str = "en") -> None:
    """Olga's Practice team: Olga, 101 members and 18 assistants (120 people, 102 paid seats)."""
    now = utcnow()
    with live.app.test_request_context():
        olga = create_user(
            name="Olga Owner", email=OWNER, password=PASSWORD, locale=locale, now=now, verified=True
        )
        db.session.commit()
        provision_subscription(db.session.get(User, olga.id), plan="practice", interval="month")
        team = teams.create_team(db.session.get(User, olga.id), "Nørrebro Klinik", now=now)
        people = [(f"Member {n:03d}", "member") for n in range(101)]
        people += [(f"Assistant {n:02d}", "assistant") for n in range(18)]
        users = [
            User(
                name=name,
                email=name.lower().replace(" ", ".") + "@klinik.example",
                password_hash="x",
                created_at=now,
            )
            for name, _role in people
        ]
        db.session.add_all(users)
        db.session.flush()
        db.session.add_all(
            Membership(team_id=team.id, user_id=u.id, role=role, created_at=now)
            for u, (_name, role) in zip(users, people, strict=True)
        )
        db.session.commit()


def rows(page: Page):
    return page.locator("#members tbody tr")


def go(page: Page, js: bool, action) -> None:
    """With JavaScript the list is swapped in place (no navigation); without it a GET loads
    the page again."""
    if js:
        with page.expect_response(re.compile(r"/settings/teams/members\?")) as answer:
            action()
        assert answer.value.request.headers.get("hx-request") == "true"
        assert answer.value.status == 200
        return
    with page.expect_navigation():
        action()


@pytest.mark.parametrize(
    "js",
    [
        pytest.param(True, id="js"),
        pytest.param(
            False, id="nojs", marks=pytest.mark.browser_context_args(java_script_enabled=False)
        ),
    ],
)
def test_admin_pages_searches_filters_and_sorts_a_120_member_team(
    page: Page, live, live_stripe, shot, js: bool
):
    make_big_team(live)
    page.goto(live.url + "/login")
    page.get_by_label("Email").fill(OWNER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(live.url + "/settings/teams")

    # Page 1: 50 rows, the owner first; the seat line counts the whole team.
    expect(rows(page)).to_have_count(50)
    expect(rows(page).first).to_contain_text("Olga Owner")
    expect(rows(page).first).to_contain_text("(you)")
    expect(page.locator("#seat-summary")).to_contain_text("120 members · 102 paid seats")
    expect(page.locator("#member-status")).to_contain_text("showing 1–50, page 1 of 3")
    shot("page-1")

    # The pager: page 2 has the next 50, at a bookmarkable URL.
    go(page, js, page.get_by_role("link", name="Next page").first.click)
    expect(page).to_have_url(re.compile(r"/settings/teams\?page=2$"))
    expect(rows(page)).to_have_count(50)
    expect(rows(page).first).to_contain_text("Member 031")
    expect(page.locator("#member-status")).to_contain_text("page 2 of 3")
    if js:  # the clicked link was swapped away: the keyboard focus is on the new status line
        expect(page.locator("#member-status")).to_be_focused()
    go(page, js, page.get_by_role("link", name="Next page").first.click)
    expect(rows(page)).to_have_count(20)
    expect(page.locator("#seat-summary")).to_contain_text("120 members · 102 paid seats")

    # Search by name: with JavaScript as one types; without it with the Search button.
    search = page.get_by_label("Name or email")
    if js:
        go(page, js, lambda: search.press_sequentially("member 04", delay=20))
    else:
        search.fill("member 04")
        go(page, js, page.get_by_role("button", name="Search", exact=True).click)
    expect(rows(page)).to_have_count(10)
    expect(rows(page).first).to_contain_text("Member 040")
    # (A plain GET form also sends the empty role; htmx pushes the short URL.)
    expect(page).to_have_url(re.compile(r"\?q=member\+04(&role=)?$"))
    expect(page.locator("#member-status")).to_have_text("10 members found")
    if js:  # the result is read out through the page's aria-live region
        expect(page.locator("#announcer")).to_have_text("10 members found")
    shot("search")

    # By email, then the role filter alone.
    search.fill("")
    search.fill("assistant.0")
    if not js:
        go(page, js, page.get_by_role("button", name="Search", exact=True).click)
    expect(rows(page)).to_have_count(10)
    search.fill("")
    if js:
        # Emptying the box searches too: back to the whole list, then filter by role.
        expect(rows(page)).to_have_count(50)
    role = page.locator("#member-role")
    if js:
        go(page, js, lambda: role.select_option("assistant"))
    else:
        role.select_option("assistant")
        go(page, js, page.get_by_role("button", name="Search", exact=True).click)
    expect(rows(page)).to_have_count(18)
    expect(page).to_have_url(re.compile(r"\?(q=&)?role=assistant$"))
    expect(page.locator("#seat-summary")).to_contain_text("120 members · 102 paid seats")

    # The URL is the list: opening it again shows the same.
    page.goto(live.url + "/settings/teams?q=member&role=member&page=3")
    expect(rows(page)).to_have_count(1)
    expect(page.get_by_label("Name or email")).to_have_value("member")
    expect(page.locator("#member-status")).to_contain_text("101 members found")
    shot("bookmark")

    # Sort by name with the column header: a plain sort (the owner is not pinned first), and
    # the same header again sorts the other way. The sort stays while paging.
    page.goto(live.url + "/settings/teams")
    name_header = page.locator("#members thead th").first
    expect(name_header).not_to_have_attribute("aria-sort", re.compile(".*"))
    go(page, js, page.get_by_role("link", name="Name", exact=True).click)
    expect(page).to_have_url(re.compile(r"/settings/teams\?sort=name$"))
    expect(rows(page).first).to_contain_text("Assistant 00")
    expect(name_header).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("#member-status")).to_contain_text("sorted by name, A–Z")
    if js:
        expect(page.locator("#announcer")).to_contain_text("sorted by name, A–Z")
        expect(page.locator("#member-status")).to_be_focused()
    go(page, js, page.get_by_role("link", name="Name", exact=True).click)
    expect(page).to_have_url(re.compile(r"\?sort=-name$"))
    expect(rows(page).first).to_contain_text("Olga Owner")
    expect(name_header).to_have_attribute("aria-sort", "descending")
    go(page, js, page.get_by_role("link", name="Next page").first.click)
    expect(page).to_have_url(re.compile(r"\?sort=-name&page=2$"))
    expect(rows(page).first).to_contain_text("Member 051")
    # Admins see when each member was last active (Olga signed in just now).
    expect(page.locator("#members thead")).to_contain_text("Last active")
    page.goto(live.url + "/settings/teams?sort=name&page=3")
    expect(rows(page).last).to_contain_text("Olga Owner")
    expect(rows(page).last).to_contain_text("Today")
    shot("sorted")


@pytest.mark.browser_context_args(java_script_enabled=False)
def test_in_danish_the_list_searches_and_sorts_and_shows_last_active(
    page: Page, live, live_stripe, shot
):
    _ = words("da")
    make_big_team(live, "da")
    page.goto(live.url + "/login")
    page.get_by_label("Email").fill(OWNER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(live.url + "/settings/teams")
    page.get_by_label(_("Name or email")).fill("member 04")
    page.get_by_role("button", name=_("Search"), exact=True).click()
    expect(rows(page)).to_have_count(10)
    page.goto(live.url + "/settings/teams")
    page.get_by_role("link", name=_("Name"), exact=True).click()
    expect(page.locator("#member-status")).to_contain_text(_("sorted by name, A–Z"))
    expect(page.locator("#members thead")).to_contain_text(_("Last active"))
    page.goto(live.url + "/settings/teams?sort=name&page=3")
    expect(rows(page).last).to_contain_text("Olga Owner")
    expect(rows(page).last).to_contain_text(_("Today"))
    shot("sorted-da")
