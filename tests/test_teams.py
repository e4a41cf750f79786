import re

import pytest

from portal.audit.models import AuditEvent
from portal.billing import seats
from portal.clock import utcnow
from portal.extensions import db
from portal.invitations.models import Invitation
from portal.teams.models import Membership, Team

HX = {"HX-Request": "true"}


def fragment(response, root_id):
    assert "<html" not in response.text
    assert f'id="{root_id}"' in response.text.split(">", 1)[0] + ">" or re.match(
        rf'\s*<[^>]+id="{root_id}"', response.text
    ), response.text[:300]


def memberships(app, team_id=None):
    with app.app_context():
        query = db.session.query(Membership)
        if team_id:
            query = query.filter_by(team_id=team_id)
        return {(m.user_id, m.role) for m in query}


def audit_actions(app, team_id):
    with app.app_context():
        events = db.session.query(AuditEvent).filter_by(team_id=team_id).order_by(AuditEvent.id)
        return [e.action for e in events]


@pytest.fixture
def seat_calls(monkeypatch):
    """Record every pass through the one place seat changes go (billing's seats_changed)."""
    calls, real = [], seats.seats_changed

    def record(team, *, now):
        calls.append(team.id)
        real(team, now=now)

    monkeypatch.setattr(seats, "seats_changed", record)
    return calls


# -- without a team --
def test_a_free_user_is_told_teams_need_pro_or_practice(client, make_user, login):
    login(make_user())
    page = client.get("/settings/teams").text
    assert "Teams need Pro or Practice" in page
    assert 'action="/settings/teams"' not in page
    assert client.post("/settings/teams", data={"name": "Klinik"}).status_code == 403


def test_a_pro_user_creates_a_team_and_becomes_its_owner_and_admin(
    client, app, make_user, login, stripe_api, seat_calls
):
    from devtools.provision import provision_subscription
    from portal.auth.models import User

    owner = make_user()
    with app.test_request_context():
        provision_subscription(db.session.get(User, owner), plan="pro", interval="month")
        db.session.commit()
    login(owner)
    assert "Create a team" in client.get("/settings/teams").text
    response = client.post("/settings/teams", data={"name": "  Aarhus   Lægehus "})
    assert response.status_code == 303
    with app.app_context():
        team = db.session.query(Team).one()
        assert (team.name, team.owner_id) == ("Aarhus Lægehus", owner)
    assert memberships(app) == {(owner, "admin")}
    assert audit_actions(app, team.id) == ["team.created"]
    assert len(seat_calls) == 1
    assert '<h1 id="team-title">Aarhus Lægehus</h1>' in client.get("/settings/teams").text


@pytest.mark.parametrize(
    ("name", "message"), [("   ", "Give the team a name."), ("x" * 81, "at most 80")]
)
def test_team_name_is_required_and_at_most_80_characters(
    client, app, make_user, login, stripe_api, name, message
):
    from devtools.provision import provision_subscription
    from portal.auth.models import User

    owner = make_user()
    with app.test_request_context():
        provision_subscription(db.session.get(User, owner), plan="pro", interval="month")
        db.session.commit()
    login(owner)
    response = client.post("/settings/teams", data={"name": name})
    assert response.status_code == 422
    assert message in response.text
    with app.app_context():
        assert db.session.query(Team).count() == 0


def test_a_member_of_a_team_cannot_create_another(client, app, make_user, make_team, login):
    owner = make_user()
    team = make_team(owner)
    login(owner)
    response = client.post("/settings/teams", data={"name": "Second"})
    assert response.status_code == 409
    with app.app_context():
        assert db.session.query(Team).count() == 1
    assert team


# -- the team page --
def test_the_team_page_lists_members_with_role_join_date_and_seat(
    client, make_user, make_team, login
):
    owner = make_user(name="Olga Owner")
    member = make_user(name="Mads Member")
    make_team(owner, plan="practice", members=[(member, "member"), (make_user(), "assistant")])
    login(member)
    page = client.get("/settings/teams").text
    assert "Olga Owner" in page and "Mads Member" in page
    assert page.count(">Paid<") == 2 and page.count(">Free<") == 1
    assert "3 members · 2 paid seats" in " ".join(page.split())
    # A member sees the team but none of the admin tools.
    for admin_only in ("Invite colleagues", "Pending invitations", "Remove", "Activity"):
        assert admin_only not in page


def test_admin_changes_a_role_with_an_htmx_partial(
    client, app, make_user, make_team, login, seat_calls
):
    owner, member = make_user(), make_user(name="Mads")
    team = make_team(owner, plan="practice", members=[(member, "member")])
    seat_calls.clear()
    login(owner)
    with app.app_context():
        mid = db.session.query(Membership).filter_by(user_id=member).one().id
    response = client.post(
        f"/settings/teams/members/{mid}/role", data={"role": "assistant"}, headers=HX
    )
    assert response.status_code == 200
    fragment(response, f"member-{mid}")
    assert 'id="seat-summary" class="seat-summary" hx-swap-oob="true"' in response.text
    assert "Mads is now assistant (free)." in response.headers["HX-Trigger"]  # lower case
    assert (member, "assistant") in memberships(app)
    assert len(seat_calls) == 1  # member → assistant frees a seat
    # The editor is gone: focus goes back to the row's link, as after Cancel.
    assert re.search(rf'<button [^>]*name="member" value="{mid}" [^>]*autofocus>', response.text)
    cancel = client.get(f"/settings/teams/members/{mid}?view=row", headers=HX)
    assert re.search(rf'<button [^>]*name="member" value="{mid}" [^>]*autofocus>', cancel.text)
    assert "autofocus" not in client.get("/settings/teams").text
    response = client.post(f"/settings/teams/members/{mid}/role", data={"role": "admin"})
    assert response.status_code == 303
    assert len(seat_calls) == 2
    assert audit_actions(app, team)[-2:] == ["member.role", "member.role"]


def test_each_row_opens_its_editor_through_the_lists_one_url(
    client, app, make_user, make_team, login
):
    owner, member, other = make_user(), make_user(name="Mads"), make_user()
    make_team(owner, members=[(member, "member")])
    make_team(other)
    with app.app_context():
        ids = {m.user_id: m.id for m in db.session.query(Membership)}
    login(owner)
    page = client.get("/settings/teams").text
    assert (
        '<form id="member-editor" method="get" action="/settings/teams/members/edit" hidden>'
        in page
    )
    button = re.search(
        r'<button type="submit" form="member-editor" name="member" value="(\d+)"[^>]*>', page
    )
    assert int(button[1]) == ids[member] and 'hx-get="/settings/teams/members/edit"' in button[0]
    # Without JavaScript the form's GET goes on to the editor's own page; htmx gets the row.
    plain = client.get(f"/settings/teams/members/edit?member={ids[member]}")
    assert plain.status_code == 303
    assert plain.headers["Location"] == f"/settings/teams/members/{ids[member]}"
    row = client.get(f"/settings/teams/members/edit?member={ids[member]}", headers=HX)
    assert row.status_code == 200 and "<html" not in row.text
    assert row.text.lstrip().startswith(f'<tr id="member-{ids[member]}" class="editing">')
    assert client.get("/settings/teams/members/edit", headers=HX).status_code == 404
    assert (
        client.get(f"/settings/teams/members/edit?member={ids[other]}", headers=HX).status_code
        == 404
    )
    assert (
        client.get(f"/settings/teams/members/edit?member={ids[owner]}", headers=HX).status_code
        == 403
    )


def test_assistants_exist_only_on_practice(client, app, make_user, make_team, login):
    owner, member = make_user(), make_user()
    make_team(owner, plan="pro", members=[(member, "member")])
    login(owner)
    with app.app_context():
        mid = db.session.query(Membership).filter_by(user_id=member).one().id
    assert (
        client.post(f"/settings/teams/members/{mid}/role", data={"role": "assistant"}).status_code
        == 400
    )
    assert '<option value="assistant"' not in client.get("/settings/teams").text
    response = client.post(
        "/settings/teams/invitations", data={"emails": "a@clinic.example", "role": "assistant"}
    )
    assert response.status_code == 422
    assert memberships(app, None) >= {(member, "member")}


def test_nobody_changes_the_owners_role_or_their_own(client, app, make_user, make_team, login):
    owner, admin = make_user(), make_user()
    make_team(owner, members=[(admin, "admin")])
    with app.app_context():
        ids = {m.user_id: m.id for m in db.session.query(Membership)}
    login(admin)
    assert (
        client.post(
            f"/settings/teams/members/{ids[owner]}/role", data={"role": "member"}
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/settings/teams/members/{ids[admin]}/role", data={"role": "member"}
        ).status_code
        == 403
    )
    assert client.post(f"/settings/teams/members/{ids[owner]}/remove").status_code == 403
    assert memberships(app) == {(owner, "admin"), (admin, "admin")}


def test_admin_removes_a_member_after_confirming(
    client, app, make_user, make_team, login, seat_calls
):
    owner, member = make_user(), make_user(name="Mads")
    team = make_team(owner, members=[(member, "member")])
    seat_calls.clear()
    login(owner)
    with app.app_context():
        mid = db.session.query(Membership).filter_by(user_id=member).one().id
    confirm = client.get(f"/settings/teams/members/{mid}/remove")
    assert "Remove Mads?" in confirm.text and "back to Free" in confirm.text
    response = client.post(f"/settings/teams/members/{mid}/remove", headers=HX)
    assert response.status_code == 200
    fragment(response, "member-results")  # the list again, and the seat line out of band
    assert 'id="seat-summary" class="seat-summary" hx-swap-oob="true"' in response.text
    assert memberships(app) == {(owner, "admin")}
    assert audit_actions(app, team)[-1] == "member.removed"
    assert len(seat_calls) == 1
    assert client.post(f"/settings/teams/members/{mid}/remove").status_code == 404


def test_after_a_removal_or_a_role_change_every_count_on_the_page_is_the_new_one(
    client, app, make_user, make_team, login
):
    # htmx swaps parts of the page: the list's status line, the seat line and the invite
    # box's price must all say what the team is now, not what it was before the action.
    owner, mads, hanne = make_user(), make_user(name="Mads"), make_user(name="Hanne")
    make_team(owner, plan="practice", members=[(mads, "member"), (hanne, "member")])
    login(owner)
    with app.app_context():
        ids = {u: db.session.query(Membership).filter_by(user_id=u).one().id for u in (mads, hanne)}
    assert "At 4 paid seats" in client.get("/settings/teams").text
    removed = client.post(f"/settings/teams/members/{ids[mads]}/remove", headers=HX)
    assert removed.headers["HX-Retarget"] == "#member-results"
    fragment(removed, "member-results")
    assert re.search(r'id="member-status"[^>]*>\s*2 members', removed.text)
    assert f'id="member-{ids[mads]}"' not in removed.text
    assert f'id="member-{ids[hanne]}"' in removed.text
    assert re.search(r'id="invite-extra"[^>]*hx-swap-oob="true"', removed.text)
    assert "At 3 paid seats" in removed.text and "2 paid seats" in removed.text
    changed = client.post(
        f"/settings/teams/members/{ids[hanne]}/role", data={"role": "assistant"}, headers=HX
    )
    assert "At 2 paid seats" in changed.text and "1 paid seat" in changed.text


def test_a_member_leaves_and_the_owner_cannot(client, app, make_user, make_team, login, seat_calls):
    owner, member = make_user(), make_user()
    team = make_team(owner, members=[(member, "member")])
    seat_calls.clear()
    login(member)
    assert "Leave team" in client.get("/settings/teams").text
    response = client.post("/settings/teams/leave")
    assert response.status_code == 303
    assert "Teams need Pro or Practice" in client.get("/settings/teams").text
    assert audit_actions(app, team)[-1] == "member.left"
    assert len(seat_calls) == 1
    client.post("/logout")
    login(owner)
    assert "Leave team" not in client.get("/settings/teams").text
    assert client.post("/settings/teams/leave").status_code == 403
    page = client.get("/settings/teams/leave")
    assert page.status_code == 403 and "You cannot leave" in page.text
    assert 'href="/settings/teams/ownership' in page.text and "Leave team" not in page.text


def test_the_owner_deletes_the_team_after_typing_its_name(
    client, app, make_user, make_team, login, monkeypatch, outbox
):
    deleted, real = [], seats.on_team_deleted

    def record(team_id, subscription, *, now):
        deleted.append(team_id)
        real(team_id, subscription, now=now)

    monkeypatch.setattr(seats, "on_team_deleted", record)
    owner, member = make_user(), make_user()
    team = make_team(owner, members=[(member, "member")])
    login(owner)
    client.post(
        "/settings/teams/invitations", data={"emails": "p@clinic.example", "role": "member"}
    )
    link = re.search(r"http://localhost(/invitations/\S+)", outbox("p@clinic.example")[0]["text"])[
        1
    ]
    wrong = client.post("/settings/teams/delete", data={"confirm": "not it"})
    assert wrong.status_code == 422 and "does not match" in wrong.text
    assert (
        client.post("/settings/teams/delete", data={"confirm": "Nørrebro Klinik"}).status_code
        == 303
    )
    with app.app_context():
        assert db.session.query(Team).count() == 0
        assert db.session.query(Invitation).one().status == "revoked"
    assert memberships(app) == set()
    assert deleted == [team]
    assert audit_actions(app, team)[-2:] == ["invitation.revoked", "team.deleted"]
    gone = client.get(link)
    assert gone.status_code == 410 and "This invitation is no longer valid" in gone.text


def test_admin_renames_the_team_and_sets_its_language(client, app, make_user, make_team, login):
    owner = make_user()
    team = make_team(owner)
    login(owner)
    response = client.post(
        "/settings/teams/settings", data={"name": "Nyt navn", "locale": "da"}, headers=HX
    )
    assert response.status_code == 200
    fragment(response, "team-settings")
    with app.app_context():
        saved = db.session.get(Team, team)
        assert (saved.name, saved.locale) == ("Nyt navn", "da")
    assert audit_actions(app, team)[-2:] == ["team.renamed", "team.language"]
    bad = client.post("/settings/teams/settings", data={"name": "", "locale": "da"}, headers=HX)
    assert bad.status_code == 422
    fragment(bad, "team-settings")


def test_team_settings_open_from_the_team_page_with_and_without_javascript(
    client, app, make_user, make_team, login
):
    owner = make_user()
    team = make_team(owner, name="Klinik Nord")
    login(owner)
    page = client.get("/settings/teams")
    # The team page shows the name and language with a link to change them, not the form.
    assert 'id="team-settings"' in page.text and 'name="name"' not in page.text
    assert 'href="/settings/teams/settings"' in page.text
    editor = client.get("/settings/teams/settings", headers=HX)
    assert editor.status_code == 200
    fragment(editor, "team-settings")
    assert 'value="Klinik Nord"' in editor.text
    full = client.get("/settings/teams/settings")
    assert full.status_code == 200 and "<html" in full.text and 'name="name"' in full.text
    # Without JavaScript a mistake comes back on the full page, next to the field.
    bad = client.post("/settings/teams/settings", data={"name": " ", "locale": "da"})
    assert bad.status_code == 422 and "<html" in bad.text
    assert 'id="name-error"' in bad.text
    saved = client.post("/settings/teams/settings", data={"name": "Klinik Syd", "locale": "en"})
    assert saved.status_code == 303 and saved.headers["Location"].endswith("/settings/teams")
    with app.app_context():
        assert db.session.get(Team, team).name == "Klinik Syd"


def test_members_cannot_open_the_team_settings(client, make_user, make_team, login):
    owner, member = make_user(), make_user()
    make_team(owner, members=[(member, "member")])
    login(member)
    assert client.get("/settings/teams/settings").status_code == 403
    assert 'href="/settings/teams/settings"' not in client.get("/settings/teams").text


def test_the_audit_log_is_newest_first_and_paginated(client, app, make_user, make_team, login):
    owner = make_user()
    team = make_team(owner)
    with app.app_context():
        from portal.audit import service as audit
        from portal.auth.models import User

        actor = db.session.get(User, owner)
        for n in range(15):
            audit.record(team, "team.renamed", actor=actor, now=utcnow(), target=f"Name {n}")
        db.session.commit()
    login(owner)
    page = client.get("/settings/teams").text
    assert page.index("Name 14") < page.index("Name 13")
    assert "Name 5" in page and "Name 4<" not in page
    older = client.get("/settings/teams/audit?page=2", headers=HX)
    assert "<html" not in older.text
    assert "Name 4" in older.text and "created the team" in older.text
    assert "Show older activity" not in older.text
    # The link that was clicked is gone: focus moves to the first older entry.
    assert re.search(
        r'<li tabindex="-1" autofocus>[^<]*<time[^>]*>[^<]*</time> — <strong>[^<]*</strong> renamed the team to Name 4<',
        older.text,
    )
    assert older.text.count("autofocus") == 1
    full = client.get("/settings/teams/audit?page=2")
    assert full.status_code == 200 and "autofocus" not in full.text


def test_a_managed_team_shows_whom_to_contact_instead_of_the_invite_form(
    client, app, make_user, make_team, login
):
    owner = make_user()
    team = make_team(owner)
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["teams", "set-managed", str(team), "--contact", "Sara CSM <sara@scribe.example>"]
    )
    assert result.exit_code == 0, result.output
    login(owner)
    page = client.get("/settings/teams").text
    assert "contact Sara CSM &lt;sara@scribe.example&gt;" in page
    assert 'name="emails"' not in page
    response = client.post(
        "/settings/teams/invitations", data={"emails": "a@clinic.example", "role": "member"}
    )
    assert response.status_code == 403
    result = runner.invoke(args=["teams", "set-managed", str(team), "--off"])
    assert result.exit_code == 0
    assert 'name="emails"' in client.get("/settings/teams").text


def test_large_teams_are_offered_a_talk_with_sales(client, make_user, make_team, login):
    owner = make_user()
    make_team(owner, members=[(make_user(), "member") for _ in range(8)])
    login(owner)
    assert "Large team?" not in client.get("/settings/teams").text
    client.post("/logout")
    owner2 = make_user()
    make_team(owner2, name="Big", members=[(make_user(), "member") for _ in range(9)])
    login(owner2)
    page = client.get("/settings/teams").text
    assert "Large team? Talk to us" in page
    assert "Invite colleagues" in page  # self-serve still works


def test_operator_command_needs_contact_or_off(app):
    result = app.test_cli_runner().invoke(args=["teams", "set-managed", "1"])
    assert result.exit_code != 0


def test_an_action_the_log_cannot_word_is_refused(app, make_user, make_team):
    from portal.audit import service as audit

    team = make_team(make_user())
    with app.app_context(), pytest.raises(ValueError, match="unknown audit action"):
        audit.record(team, "member.role_changed", actor=None, now=utcnow())


@pytest.mark.parametrize("value", ["0", "-1", "99999999999999", "abc", ""])
def test_a_row_id_out_of_range_or_not_a_number_is_no_row(
    client, app, make_user, make_team, login, value
):
    # PostgreSQL's integer ids end at 2**31 - 1: a longer number must be a 404, not a 500.
    owner = make_user()
    make_team(owner)
    login(owner)
    assert client.get(f"/settings/teams/members/edit?member={value}", headers=HX).status_code == 404
    for action in ("resend", "revoke"):
        response = client.post(f"/settings/teams/invitations/{action}", data={"invitation": value})
        assert response.status_code == 404
