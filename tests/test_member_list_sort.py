"""The member list's sortable columns and its "last active" column (issue 14, item 3)."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import update

from portal.auth.models import User
from portal.clock import utcnow
from portal.extensions import db
from portal.teams.models import Membership
from tests.test_member_list import HX, add_members, names_on


@pytest.fixture
def dated_team(app, make_user, make_team):
    """A Practice team of 120: the owner (Olga), Zed, 100 members and 18 assistants; member n
    joined n days ago, Zed 200 days ago; some were last active today, some long ago, some not
    since it was recorded."""
    owner = make_user(name="Olga Owner", email="olga@clinic.example")
    zed = make_user(name="Zed Viewer", email="zed@clinic.example")
    team = make_team(owner, plan="practice", members=[(zed, "member")])
    members = add_members(app, team, [f"Member {n:03d}" for n in range(100)])
    add_members(app, team, [f"Assistant {n:02d}" for n in range(18)], role="assistant")
    now = utcnow()
    with app.app_context():
        for n, membership_id in enumerate(members):
            db.session.execute(
                update(Membership)
                .where(Membership.id == membership_id)
                .values(created_at=now - timedelta(days=n + 1))
            )
        db.session.execute(
            update(Membership)
            .where(Membership.user_id == zed)
            .values(created_at=now - timedelta(days=200))
        )
        db.session.execute(
            update(User)
            .where(User.email == "member.000@clinic.example")
            .values(last_seen_at=now - timedelta(minutes=5))
        )
        db.session.execute(
            update(User)
            .where(User.email == "member.001@clinic.example")
            .values(last_seen_at=now.replace(year=2025, month=3, day=4, hour=12))
        )
        db.session.execute(
            update(User).where(User.email == "member.002@clinic.example").values(last_seen_at=None)
        )
        db.session.commit()
    return {"owner": owner, "zed": zed, "team": team}


def test_an_explicit_sort_is_a_plain_sort_over_the_whole_list(client, login, dated_team):
    login(dated_team["zed"])
    by_name = names_on(client.get("/settings/teams?sort=name").text)
    assert by_name[:2] == ["Assistant 00", "Assistant 01"]
    assert "Olga Owner" not in by_name  # not pinned first: its place by name is page 3
    last = names_on(client.get("/settings/teams?sort=name&page=3").text)
    assert last[-2:] == ["Olga Owner", "Zed Viewer"]
    reverse = names_on(client.get("/settings/teams?sort=-name").text)
    assert reverse[:3] == ["Zed Viewer", "Olga Owner", "Member 099"]


def test_sort_by_role_puts_admins_members_assistants_in_that_order(client, login, dated_team):
    login(dated_team["owner"])
    rows = names_on(client.get("/settings/teams?sort=role").text)
    assert rows[:3] == ["Olga Owner", "Member 000", "Member 001"]
    reverse = names_on(client.get("/settings/teams?sort=-role").text)
    assert reverse[:18] == [f"Assistant {n:02d}" for n in range(18)]
    assert reverse[18] == "Member 000"  # ties by name, ascending, in both directions


def test_sort_by_joined_date_both_ways(client, login, dated_team):
    login(dated_team["owner"])
    newest = names_on(client.get("/settings/teams?sort=-joined").text)
    # The owner and the assistants joined just now, then member 0 a day ago, ...
    assert newest[:19] == [
        "Assistant 00",
        *[f"Assistant {n:02d}" for n in range(1, 18)],
        "Olga Owner",
    ]
    assert newest[19:21] == ["Member 000", "Member 001"]
    oldest = names_on(client.get("/settings/teams?sort=joined").text)
    assert oldest[:2] == ["Zed Viewer", "Member 099"]


def test_a_sorted_list_pages_without_repeating_anyone(client, login, dated_team):
    login(dated_team["owner"])
    for sort in ("name", "-name", "role", "-role", "joined", "-joined"):
        pages = [
            names_on(client.get(f"/settings/teams?sort={sort}&page={n}").text) for n in (1, 2, 3)
        ]
        assert [len(p) for p in pages] == [50, 50, 20], sort
        assert len({name for page in pages for name in page}) == 120, sort


def test_sort_headers_are_links_with_aria_sort_and_keep_the_search(client, login, dated_team):
    login(dated_team["owner"])
    plain = client.get("/settings/teams?q=member").text
    assert "aria-sort" not in plain  # the default order is no single column's
    assert 'href="/settings/teams?q=member&amp;sort=name"' in plain
    assert 'hx-get="/settings/teams/members?q=member&amp;sort=name"' in plain
    assert 'href="/settings/teams?q=member&amp;sort=-joined"' in plain  # newest first
    sorted_page = client.get("/settings/teams?q=member&sort=name&page=2").text
    assert re.search(
        r'<th scope="col" aria-sort="ascending"><a href="[^"]*sort=-name"', sorted_page
    )
    assert sorted_page.count("aria-sort=") == 1
    # The pager and the search form keep the sort; a new sort starts at page 1.
    assert 'href="/settings/teams?q=member&amp;sort=name" rel="prev"' in sorted_page
    assert '<input type="hidden" name="sort" value="name">' in sorted_page
    assert "sorted by name, A–Z" in sorted_page
    descending = client.get("/settings/teams?sort=-name").text
    assert 'aria-sort="descending"' in descending
    assert 'href="/settings/teams?sort=name"' in descending


def test_htmx_sort_swaps_the_list_pushes_the_url_and_announces(client, login, dated_team):
    login(dated_team["owner"])
    response = client.get("/settings/teams/members?sort=-joined", headers=HX)
    assert response.status_code == 200
    assert response.text.startswith('<div id="member-results">') and "<html" not in response.text
    assert response.headers["HX-Push-Url"] == "/settings/teams?sort=-joined"
    assert "sorted by joined date, newest first" in response.headers["HX-Trigger"]
    plain = client.get("/settings/teams/members?sort=-joined")
    assert plain.status_code == 303 and plain.headers["Location"] == "/settings/teams?sort=-joined"


@pytest.mark.parametrize(
    "sort",
    ["bogus", "--name", "name-", "NAME", "%00", "-", "joined%20", "a" * 3000, "name&sort=role"],
)
def test_bad_sort_values_mean_the_default_order_never_an_error(client, login, dated_team, sort):
    login(dated_team["zed"])
    for path in ("/settings/teams", "/settings/teams/members"):
        response = client.get(f"{path}?sort={sort}", headers=HX if "members" in path else {})
        assert response.status_code == 200, (path, sort)
        rows = names_on(response.text)
        if sort != "name&sort=role":  # the first value counts: a name sort
            assert rows[:2] == ["Olga Owner", "Zed Viewer"], sort


def test_admins_see_when_each_member_was_last_active(client, login, dated_team):
    login(dated_team["owner"])
    page = client.get("/settings/teams?q=member 00").text
    assert '<th scope="col">Last active</th>' in page
    cells = dict(
        re.findall(
            r"<tr id=\"member-\d+\"><td>(Member 00\d)(?: <span[^>]*>[^<]*</span>)*</td>"
            r"(?:<td[^>]*>[^<]*</td>){3}"
            r"<td data-label=\"Last active\">([^<]*)</td>",
            page,
        )
    )
    assert cells["Member 000"] == "Today"
    assert cells["Member 001"] == "Mar 4, 2025"
    assert cells["Member 002"] == "Not recorded"


def test_members_do_not_see_the_last_active_column(client, login, dated_team):
    login(dated_team["zed"])
    page = client.get("/settings/teams?q=member 00").text
    assert "Last active" not in page and "Not recorded" not in page


def test_last_active_in_danish(client, app, login, make_user, dated_team):
    with app.app_context():
        db.session.execute(update(User).where(User.id == dated_team["owner"]).values(locale="da"))
        db.session.commit()
    login(dated_team["owner"])
    page = client.get("/settings/teams?q=member 00").text
    assert "Sidst aktiv" in page and "I dag" in page and "Ikke registreret" in page
    assert "4. mar. 2025" in page
    assert "sorteret efter navn" in client.get("/settings/teams?sort=name").text
