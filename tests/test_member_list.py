"""The team page's member list and pending invitations page (50 a page) and search."""

import re
from pathlib import Path

import pytest

from portal.auth.models import User
from portal.clock import utcnow
from portal.extensions import db
from portal.invitations.models import Invitation
from portal.teams.models import Membership

HX = {"HX-Request": "true"}
ROOT = Path(__file__).resolve().parents[1]


def add_members(app, team_id, names, role="member"):
    """Add one member per name (emails from the names); returns their membership ids."""
    now = utcnow()
    with app.app_context():
        users = [
            User(
                email=f"{name.lower().replace(' ', '.')}@clinic.example",
                name=name,
                password_hash="x",
                created_at=now,
            )
            for name in names
        ]
        db.session.add_all(users)
        db.session.flush()
        memberships = [
            Membership(team_id=team_id, user_id=u.id, role=role, created_at=now) for u in users
        ]
        db.session.add_all(memberships)
        db.session.commit()
        return [m.id for m in memberships]


def add_invitations(app, team_id, count, inviter):
    now = utcnow()
    with app.app_context():
        db.session.add_all(
            Invitation(
                team_id=team_id,
                email=f"invitee{n:03d}@clinic.example",
                role="member",
                token_hash=f"{team_id}-{n:060d}",
                sent_at=now,
                expires_at=now.replace(year=now.year + 1),
                invited_by_id=inviter,
            )
            for n in range(count)
        )
        db.session.commit()


def names_on(html):
    """The member names of the page's rows, in order."""
    return re.findall(r'<tr id="member-\d+"><td>([^<]+?)(?: <span|</td>)', html)


def seat_line(html):
    return " ".join(re.search(r'id="seat-summary".*?</p>', html, re.S).group(0).split())


@pytest.fixture
def big_team(app, make_user, make_team):
    """A 120-member Practice team: the owner (Olga), 100 members, 18 assistants and Zed."""
    owner = make_user(name="Olga Owner", email="olga@clinic.example")
    zed = make_user(name="Zed Viewer", email="zed@clinic.example")
    team = make_team(owner, plan="practice", members=[(zed, "member")])
    add_members(app, team, [f"Member {n:03d}" for n in range(100)])
    add_members(app, team, [f"Assistant {n:02d}" for n in range(18)], role="assistant")
    return {"owner": owner, "zed": zed, "team": team}


def test_the_member_list_shows_50_a_page_with_the_owner_and_you_first(client, login, big_team):
    login(big_team["zed"])
    pages = [client.get(f"/settings/teams?page={n}").text for n in (1, 2, 3)]
    rows = [names_on(page) for page in pages]
    assert [len(r) for r in rows] == [50, 50, 20]
    assert rows[0][:3] == ["Olga Owner", "Zed Viewer", "Assistant 00"]
    everyone = [name for page in rows for name in page]
    assert len(set(everyone)) == 120  # nobody twice, nobody missing
    assert "showing 51–100, page 2 of 3" in pages[1]
    # The counts stay the whole team's on every page.
    for page in pages:
        assert "120 members · 102 paid seats" in seat_line(page)


def test_the_pager_links_are_the_page_url_and_the_partial(client, login, big_team):
    login(big_team["owner"])
    first = client.get("/settings/teams").text
    assert 'href="/settings/teams?page=2" rel="next"' in first
    assert 'hx-get="/settings/teams/members?page=2"' in first
    assert 'hx-push-url="/settings/teams?page=2"' in first
    assert "Previous page" not in first
    searched = client.get("/settings/teams?q=member&role=member&page=2").text
    assert 'href="/settings/teams?q=member&amp;role=member" rel="prev"' in searched
    assert 'value="member"' in searched and '<option value="member" selected>' in searched


def test_search_finds_names_and_emails_whatever_the_case(client, login, big_team):
    login(big_team["owner"])
    page = client.get("/settings/teams?q=MEMBER 04").text
    assert names_on(page) == [f"Member {n:03d}" for n in range(40, 50)]
    assert "10 members found" in page
    by_email = client.get("/settings/teams?q=zed@clinic").text
    assert names_on(by_email) == ["Zed Viewer"]
    # The owner and you stay first when they match, and the counts stay the whole team's.
    owner_too = client.get("/settings/teams?q=o").text
    assert names_on(owner_too)[0] == "Olga Owner"
    assert "120 members · 102 paid seats" in seat_line(owner_too)
    # LIKE wildcards are searched for as they are.
    assert "No members match your search." in client.get("/settings/teams?q=%25").text
    assert "No members match your search." in client.get("/settings/teams?q=_").text


def test_the_role_filter_shows_one_role(client, login, big_team):
    login(big_team["owner"])
    page = client.get("/settings/teams?role=assistant").text
    assert names_on(page) == [f"Assistant {n:02d}" for n in range(18)]
    assert "18 members found" in page
    admins = client.get("/settings/teams?role=admin").text
    assert names_on(admins) == ["Olga Owner"]


def test_a_pro_team_has_no_assistant_filter(client, make_user, make_team, login):
    owner = make_user()
    make_team(owner, plan="pro")
    login(owner)
    page = client.get("/settings/teams").text
    assert '<option value="member">' in page and '<option value="assistant"' not in page


@pytest.mark.parametrize(
    "query",
    [
        "page=abc",
        "page=0",
        "page=-3",
        "page=1.5",
        "page=99999999999999999999",
        "role=owner",
        "role=%3Cscript%3E",
        "q=%00x",
        "q=" + "a" * 5000,
        "invitations_page=x",
        "invitations_page=99999999999",
    ],
)
def test_bad_list_parameters_are_ignored_not_an_error(client, login, big_team, query):
    login(big_team["owner"])
    for path in ("/settings/teams", "/settings/teams/members", "/settings/teams/invitations"):
        response = client.get(f"{path}?{query}", headers=HX if path != "/settings/teams" else {})
        assert response.status_code == 200, (path, query)
        assert "120 members" in response.text or path != "/settings/teams"


def test_a_page_past_the_end_says_so_and_links_back(client, login, big_team):
    login(big_team["owner"])
    page = client.get("/settings/teams?page=9").text
    assert names_on(page) == []
    assert "120 members · there is no page 9" in page
    assert 'href="/settings/teams?page=3" rel="prev"' in page


def test_htmx_search_swaps_the_list_pushes_the_page_url_and_announces(client, login, big_team):
    login(big_team["owner"])
    response = client.get("/settings/teams/members?q=member 04&page=1", headers=HX)
    assert response.status_code == 200
    assert "<html" not in response.text
    assert response.text.startswith('<div id="member-results">')
    assert len(names_on(response.text)) == 10
    assert response.headers["HX-Push-Url"] == "/settings/teams?q=member+04"
    assert "10 members found" in response.headers["HX-Trigger"]
    # Without htmx the partial's URL is the page's.
    plain = client.get("/settings/teams/members?q=member 04&page=2")
    assert plain.status_code == 303
    assert plain.headers["Location"] == "/settings/teams?q=member+04&page=2"


def test_names_and_searches_are_escaped(client, app, login, big_team):
    add_members(app, big_team["team"], ['<img src=x onerror="alert(1)">'])
    login(big_team["owner"])
    page = client.get("/settings/teams?q=%3Cimg").text
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page
    assert 'value="&lt;img"' in page


def test_a_member_sees_the_list_and_search_but_no_editor_links(client, login, big_team):
    login(big_team["zed"])
    page = client.get("/settings/teams?q=member 00").text
    assert 'id="member-search"' in page and "Change role or remove" not in page
    assert "Pending invitations" not in page


def test_pending_invitations_page_10_at_a_time(client, app, login, big_team):
    add_invitations(app, big_team["team"], 25, big_team["owner"])
    login(big_team["owner"])
    first = client.get("/settings/teams").text
    assert first.count('<tr id="invitation-') == 10
    assert 'href="/settings/teams?invitations_page=2" rel="next"' in first
    assert 'hx-get="/settings/teams/invitations?invitations_page=2"' in first
    last = client.get("/settings/teams?invitations_page=3").text
    assert last.count('<tr id="invitation-') == 5
    assert len(names_on(last)) == 50  # the member list keeps its own page
    part = client.get("/settings/teams/invitations?invitations_page=2&page=2", headers=HX)
    assert part.text.startswith('<div id="invitations"')
    assert part.text.count('<tr id="invitation-') == 10
    # The page's other list keeps its place in the links.
    assert 'href="/settings/teams?page=2&amp;invitations_page=3" rel="next"' in part.text
    past = client.get("/settings/teams?invitations_page=7").text
    assert "There is no page 7 of pending invitations." in past
    assert 'href="/settings/teams?invitations_page=3" rel="prev"' in past


# The one revoke URL of a page of invitations, and the invitation its first button names.
REVOKE = r'name="invitation" value="(\d+)" formaction="(/settings/teams/invitations/revoke[^"]*)"'


def test_resend_and_revoke_come_back_to_the_same_page_of_invitations(client, app, login, big_team):
    add_invitations(app, big_team["team"], 15, big_team["owner"])
    login(big_team["owner"])
    second = client.get("/settings/teams?invitations_page=2").text
    invitation, url = re.search(REVOKE, second).groups()
    assert url == "/settings/teams/invitations/revoke?invitations_page=2"
    response = client.post(url, data={"invitation": invitation})
    assert response.status_code == 303
    assert response.headers["Location"] == "/settings/teams?invitations_page=2"
    # With htmx the reply is the same page of the list.
    invitation, url = re.search(
        REVOKE, client.get("/settings/teams?invitations_page=2").text
    ).groups()
    part = client.post(url, data={"invitation": invitation}, headers=HX)
    assert part.status_code == 200 and "Page 2 of 2" in part.text


def test_one_resend_and_one_revoke_url_serve_every_row(client, app, login, big_team):
    add_invitations(app, big_team["team"], 3, big_team["owner"])
    login(big_team["owner"])
    page = client.get("/settings/teams").text
    rows = re.findall(r'<tr id="invitation-(\d+)">', page)
    named = re.findall(r'name="invitation" value="(\d+)" formaction="([^"]+)"', page)
    assert {url for _, url in named} == {
        "/settings/teams/invitations/resend",
        "/settings/teams/invitations/revoke",
    }
    assert [i for i, _ in named] == [i for i in rows for _ in range(2)]
    # No invitation named, or one of no team of ours: nothing happens.
    assert client.post("/settings/teams/invitations/revoke").status_code == 404
    assert (
        client.post("/settings/teams/invitations/revoke", data={"invitation": "x"}).status_code
        == 404
    )
    assert (
        client.post("/settings/teams/invitations/revoke", data={"invitation": "0"}).status_code
        == 404
    )
    assert re.findall(r'<tr id="invitation-(\d+)">', client.get("/settings/teams").text) == rows


def test_no_template_turns_autoescaping_off():
    for folder in ("templates", "portal"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in (".html", ".txt", ".py"):
                assert "autoescape false" not in path.read_text(), path


def test_only_portal_htmx_reads_or_writes_htmx_headers():
    for path in (ROOT / "portal").rglob("*.py"):
        if path.name != "htmx.py":
            assert "HX-" not in path.read_text(), path
