import re
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import pytest

from portal.audit.models import AuditEvent
from portal.auth.models import User
from portal.clock import utcnow
from portal.extensions import db
from portal.invitations import service
from portal.invitations.models import Invitation
from portal.outbox.models import OutboxMessage
from portal.teams.models import Membership, Team
from tests.conftest import PASSWORD

HX = {"HX-Request": "true"}


def invite(client, emails, role="member", **kwargs):
    return client.post(
        "/settings/teams/invitations", data={"emails": emails, "role": role}, **kwargs
    )


def link_for(outbox, address, nth=-1):
    mails = [m for m in outbox(address) if "/invitations/" in m["text"]]
    return re.search(r"http://localhost(/invitations/\S+)", mails[nth]["text"]).group(1)


def sent_minutes_ago(app, minutes):
    with app.app_context():
        for invitation in db.session.query(Invitation):
            invitation.sent_at -= timedelta(minutes=minutes)
        db.session.commit()


def snapshot(app):
    """Everything a refused or read-only request must leave as it was."""
    with app.app_context():
        return (
            sorted(
                (i.id, i.status, i.token_hash, i.expires_at) for i in db.session.query(Invitation)
            ),
            sorted((m.user_id, m.team_id, m.role) for m in db.session.query(Membership)),
            db.session.query(AuditEvent).count(),
            db.session.query(OutboxMessage).count(),
        )


@pytest.fixture
def team(make_user, make_team):
    owner = make_user(email="olga@clinic.example", name="Olga Owner")
    return {"owner": owner, "id": make_team(owner, name="Vesterbro Klinik")}


def test_invite_form_reports_what_happened_to_each_address(
    client, app, team, make_user, login, outbox
):
    member = make_user(email="mads@clinic.example")
    with app.app_context():
        db.session.add(Membership(team_id=team["id"], user_id=member, role="member"))
        db.session.commit()
    login(team["owner"])
    invite(client, "old@clinic.example")
    sent_minutes_ago(app, 2)  # within a minute a second invite is a double submit
    response = invite(
        client,
        "New@Clinic.example, old@clinic.example\nmads@clinic.example not-an-address;olga@clinic.example",
        headers=HX,
    )
    assert response.status_code == 200
    assert "<html" not in response.text and response.text.lstrip().startswith(
        '<div id="invite-form">'
    )
    assert 'id="invitations" hx-swap-oob="true"' in response.text
    outcomes = dict(re.findall(r'class="result-(\w+)"><strong>([^<]+)</strong>', response.text))
    assert {v: k for k, v in outcomes.items()} == {
        "new@clinic.example": "invited",
        "old@clinic.example": "resent",
        "mads@clinic.example": "member",
        "not-an-address": "invalid",
        "olga@clinic.example": "yourself",
    }
    # One result list (above); #flash and the announcement give the count, styled as an
    # error when an address needs attention.
    summary = "2 invitations sent. 2 addresses need your attention: see the list."
    assert summary in response.headers["HX-Trigger"]
    assert f'<p class="flash flash-error">{summary}</p>' in response.text
    with app.app_context():
        pending = db.session.query(Invitation).filter_by(status="pending").all()
        assert sorted(i.email for i in pending) == ["new@clinic.example", "old@clinic.example"]
    assert len(outbox("old@clinic.example")) == 2 and len(outbox("new@clinic.example")) == 1


def test_invitation_email_names_team_inviter_role_and_expiry_in_the_right_language(
    client, app, team, make_user, login, outbox
):
    make_user(email="dansk@clinic.example", locale="da")
    login(team["owner"])
    invite(client, "dansk@clinic.example unknown@clinic.example", role="admin")
    [danish] = outbox("dansk@clinic.example")
    assert danish["subject"] == "Olga Owner har inviteret dig til Vesterbro Klinik"
    assert "som administrator" in danish["text"]
    [english] = outbox("unknown@clinic.example")  # no account: the team's language (English)
    assert english["subject"] == "Olga Owner invited you to join Vesterbro Klinik"
    # Dates in emails are the clinic's local dates (BABEL_DEFAULT_TIMEZONE), not UTC ones:
    # between 23:00 and 24:00 UTC the two differ.
    clinic_time = ZoneInfo(app.config["BABEL_DEFAULT_TIMEZONE"])
    expiry = (utcnow().replace(tzinfo=UTC) + timedelta(days=30)).astimezone(clinic_time)
    expiry = expiry.strftime("%B %-d, %Y")
    assert expiry in english["text"] and "as an admin" in english["text"]
    assert "/invitations/" in english["html"]


def test_tokens_are_long_random_and_only_their_hash_is_stored(client, app, team, login, outbox):
    login(team["owner"])
    invite(client, "a@clinic.example")
    token = link_for(outbox, "a@clinic.example").rsplit("/", 1)[1]
    assert len(token) >= 43  # 32 random bytes, url-safe base64
    with app.app_context():
        row = db.session.query(Invitation).one()
        assert row.token_hash == service.hash_token(token)
        assert token not in repr([getattr(row, c.name) for c in Invitation.__table__.columns])


def test_opening_the_link_changes_nothing(client, app, team, login, outbox):
    login(team["owner"])
    invite(client, "a@clinic.example")
    link = link_for(outbox, "a@clinic.example")
    client.post("/logout")
    before = snapshot(app)
    for _ in range(3):
        page = client.get(link)
        assert page.status_code == 200
    assert snapshot(app) == before
    assert "Olga Owner invited a@clinic.example to join Vesterbro Klinik as a member." in page.text
    assert "valid until" in page.text and "Decline" in page.text


def test_a_new_person_signs_up_with_the_fixed_email_and_joins(client, app, team, login, outbox):
    login(team["owner"])
    invite(client, "nina@clinic.example")
    link = link_for(outbox, "nina@clinic.example")
    client.post("/logout")
    page = client.get(link).text
    assert 'value="nina@clinic.example" readonly' in page
    assert "You get Pro through Vesterbro Klinik" in page
    response = client.post(
        link + "/signup",
        data={"name": "Nina", "password": "summer by the sea", "email": "evil@clinic.example"},
    )
    assert response.status_code == 303 and response.headers["Location"] == "/settings/teams"
    with app.app_context():
        user = db.session.query(User).filter_by(email="nina@clinic.example").one()
        assert user.email_verified_at is not None
        assert db.session.query(User).filter_by(email="evil@clinic.example").count() == 0
        assert db.session.query(Membership).filter_by(user_id=user.id).one().role == "member"
    assert "Nina" in client.get("/settings/teams").text
    [notice] = outbox("olga@clinic.example")
    assert notice["subject"] == "Nina joined Vesterbro Klinik"


def test_the_invitation_email_greets_the_invitee_by_the_name_the_admin_typed(
    client, team, login, outbox
):
    login(team["owner"])
    invite(client, "Ida Test <ida@clinic.example>, bo@clinic.example")
    [ida] = outbox("ida@clinic.example")
    assert "Hello Ida Test," in ida["text"] and "<p>Hello Ida Test,</p>" in ida["html"]
    [bo] = outbox("bo@clinic.example")
    assert "Hello,\n" in bo["text"]


def test_an_address_of_any_valid_length_can_decline(client, app, team, login, outbox):
    address = "a" * 64 + "@" + "b" * 60 + ".clinic.example"  # 140 characters
    login(team["owner"])
    assert invite(client, address).status_code == 303
    link = link_for(outbox, address)
    client.post("/logout")
    assert client.post(link + "/decline").status_code == 200  # the "declined" page
    with app.app_context():
        event = db.session.query(AuditEvent).filter_by(action="invitation.declined").one()
        assert len(event.actor_name) <= 120 and event.actor_name.startswith("aaaa")


def test_the_resend_limit_counts_the_invitation_however_its_id_is_written(
    client, app, team, login, outbox
):
    login(team["owner"])
    invite(client, "r@clinic.example")
    with app.app_context():
        iid = db.session.query(Invitation).one().id
    resend = "/settings/teams/invitations/resend"
    for _ in range(5):
        assert client.post(resend, data={"invitation": iid}).status_code == 303
    for spelling in (iid, f"0{iid}", f" {iid}", f"+{iid}", f"{iid} "):
        assert client.post(resend, data={"invitation": spelling}).status_code == 429
    assert len(outbox("r@clinic.example")) == 6  # the invitation and 5 resends


def test_a_removed_admin_is_not_told_who_joined_the_owner_is(
    client, app, team, make_user, login, outbox
):
    ada = make_user(email="ada@clinic.example", name="Ada Admin")
    with app.app_context():
        membership = Membership(team_id=team["id"], user_id=ada, role="admin")
        db.session.add(membership)
        db.session.commit()
        ada_membership = membership.id
    login(ada)
    invite(client, "x@clinic.example")
    link = link_for(outbox, "x@clinic.example")
    client.post("/logout")
    login(team["owner"])
    assert client.post(f"/settings/teams/members/{ada_membership}/remove").status_code == 303
    client.post("/logout")
    login(make_user(email="x@clinic.example", name="Xena"))
    assert client.post(link + "/accept").status_code == 303
    assert not [m for m in outbox("ada@clinic.example") if "Xena" in m["subject"]]
    assert [m["subject"] for m in outbox("olga@clinic.example")][-1] == (
        "Xena joined Vesterbro Klinik"
    )


def test_a_deleted_inviter_reads_deleted_user_in_the_readers_language(
    client, app, team, make_user, login, outbox
):
    ada = make_user(email="ada@clinic.example", name="Ada Admin")
    with app.app_context():
        db.session.add(Membership(team_id=team["id"], user_id=ada, role="admin"))
        db.session.commit()
    login(ada)
    invite(client, "x@clinic.example")
    link = link_for(outbox, "x@clinic.example")
    assert client.post("/settings/account/delete", data={"password": PASSWORD}).status_code in (
        200,
        303,
    )
    page = " ".join(app.test_client().get(link, headers={"Accept-Language": "da"}).text.split())
    assert "slettet bruger har inviteret" in page and "deleted user" not in page
    login(team["owner"])
    client.post("/language", data={"locale": "da"})
    assert "deleted user" not in client.get("/settings/teams").text
    assert "slettet bruger" in client.get("/settings/teams").text


@pytest.mark.parametrize("htmx", [False, True])
def test_addresses_that_need_attention_stay_in_the_box_with_the_error_beside_it(
    client, app, team, login, htmx
):
    # The good addresses are invited; the others are left in the box to correct, not retyped.
    login(team["owner"])
    headers = {"HX-Request": "true"} if htmx else {}
    typed = "ok@clinic.example, not-an-email\nKarin Kure <karin@klinik.dk>, ærø@klinik.dk"
    response = invite(client, typed, headers=headers)
    assert response.status_code == 200
    box = re.search(r'<textarea id="emails"[^>]*>([^<]*)</textarea>', response.text)
    assert box and box.group(1) == "not-an-email\nærø@klinik.dk"
    assert 'aria-invalid="true"' in response.text
    error = re.search(r'<p class="error" id="emails-error">([^<]*)</p>', response.text).group(1)
    assert "2 addresses were not invited" in error
    assert "not-an-email</strong>: " in response.text  # the line per address, beside the box
    with app.app_context():
        invited = {i.email for i in db.session.query(Invitation)}
    assert invited == {"ok@clinic.example", "karin@klinik.dk"}


@pytest.mark.parametrize("team_language", ["en", "da"])
def test_a_new_account_keeps_the_language_its_sign_up_page_was_in(
    client, app, team, login, outbox, team_language
):
    # The team's language is for emails to people without an account; once someone has signed
    # up on a page in their own language, the portal stays in it.
    with app.app_context():
        db.session.get(Team, team["id"]).locale = team_language
        db.session.commit()
    login(team["owner"])
    invite(client, "nina@clinic.example")
    link = link_for(outbox, "nina@clinic.example")
    nina = app.test_client()  # her own browser, in the other language
    browser = "en" if team_language == "da" else "da"
    headers = {"Accept-Language": browser}
    page = nina.get(link, headers=headers).text
    assert f'<html lang="{browser}">' in page
    data = {"name": "Nina", "password": "summer by the sea"}
    assert nina.post(link + "/signup", data=data, headers=headers).status_code == 303
    with app.app_context():
        assert db.session.query(User).filter_by(email="nina@clinic.example").one().locale == browser


def test_an_existing_user_logs_in_from_the_link_and_comes_back_to_accept(
    client, app, team, make_user, login, outbox
):
    erik = make_user(email="erik@clinic.example", name="Erik")
    login(team["owner"])
    invite(client, "ERIK@clinic.example")
    link = link_for(outbox, "erik@clinic.example")
    client.post("/logout")
    page = client.get(link).text
    assert "Log in to accept" in page
    login_url = re.search(r'href="(/login\?[^"]+)"', page).group(1).replace("&amp;", "&")
    assert "email=erik@clinic.example" in login_url.replace("%40", "@")
    response = client.post(
        login_url, data={"email": "erik@clinic.example", "password": PASSWORD, "next": link}
    )
    assert response.headers["Location"] == link
    assert "Accept and join Vesterbro Klinik" in client.get(link).text
    assert client.post(link + "/accept").status_code == 303
    with app.app_context():
        assert db.session.query(Membership).filter_by(user_id=erik).count() == 1


def test_signed_in_as_someone_else_is_told_so_and_cannot_accept(
    client, app, team, make_user, login, outbox
):
    other = make_user(email="bob@clinic.example")
    login(team["owner"])
    invite(client, "alice@clinic.example")
    link = link_for(outbox, "alice@clinic.example")
    client.post("/logout")
    login(other)
    page = client.get(link).text
    assert (
        "This invitation is for alice@clinic.example; you are signed in as bob@clinic.example."
        in page
    )
    assert "Sign out and continue" in page
    before = snapshot(app)
    assert client.post(link + "/accept").status_code == 403
    assert snapshot(app) == before


def test_someone_in_another_team_is_offered_to_leave_it_first(
    client, app, team, make_user, make_team, login, outbox
):
    elsewhere_owner = make_user(email="owner2@clinic.example")
    member = make_user(email="m@clinic.example")
    make_team(elsewhere_owner, name="Other Klinik", members=[(member, "member")])
    login(team["owner"])
    invite(client, "m@clinic.example owner2@clinic.example")
    client.post("/logout")
    login(member)
    link = link_for(outbox, "m@clinic.example")
    page = client.get(link).text
    assert "You are a member of Other Klinik" in page and "Leave Other Klinik" in page
    before = snapshot(app)
    assert client.post(link + "/accept").status_code == 409
    assert snapshot(app) == before
    client.post("/settings/teams/leave", data={"next": link})
    assert client.post(link + "/accept").status_code == 303
    client.post("/logout")
    login(elsewhere_owner)
    page = client.get(link_for(outbox, "owner2@clinic.example")).text
    assert "You own Other Klinik, so you cannot leave it" in page


def test_expiry_is_exactly_30_days(client, app, team, make_user, login, outbox, monkeypatch):
    erik = make_user(email="erik@clinic.example")
    login(team["owner"])
    invite(client, "erik@clinic.example")
    link = link_for(outbox, "erik@clinic.example")
    with app.app_context():
        invitation = db.session.query(Invitation).one()
        assert invitation.expires_at - invitation.sent_at == timedelta(days=30)
        expires = invitation.expires_at
    client.post("/logout")
    login(erik)
    import portal.invitations.views as views

    monkeypatch.setattr(views, "utcnow", lambda: expires + timedelta(seconds=1))
    late = client.post(link + "/accept")
    assert late.status_code == 410 and "This invitation has expired" in late.text
    with app.app_context():
        assert db.session.query(Invitation).one().status == "pending"
    monkeypatch.setattr(views, "utcnow", lambda: expires - timedelta(seconds=1))
    assert client.post(link + "/accept").status_code == 303


def test_resend_issues_a_fresh_link_and_30_days_and_the_old_link_stops(
    client, app, team, login, outbox
):
    login(team["owner"])
    invite(client, "karen@clinic.example")
    old = link_for(outbox, "karen@clinic.example")
    with app.app_context():
        invitation = db.session.query(Invitation).one()
        invitation.expires_at -= timedelta(days=20)
        db.session.commit()
        iid = invitation.id
    response = client.post(
        "/settings/teams/invitations/resend", data={"invitation": iid}, headers=HX
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="invitations"')
    # Days left are rounded down: 30 days less the moment since the resend.
    assert f'<tr id="invitation-{iid}">' in response.text and "29 days left" in response.text
    assert 'id="audit-log" class="audit" hx-swap-oob="true"' in response.text
    assert "Invitation sent again to karen@clinic.example." in response.text  # shown in #flash
    new = link_for(outbox, "karen@clinic.example")
    assert new != old
    gone = client.get(old)
    assert gone.status_code == 410 and "replaced by a newer invitation" in gone.text
    assert client.get(new).status_code == 200
    with app.app_context():
        assert db.session.query(Invitation).filter_by(status="pending").count() == 1


def test_revoke_ends_the_link_and_drops_a_still_queued_email(client, app, team, login, outbox):
    login(team["owner"])
    invite(client, "lars@clinic.example")
    link = link_for(outbox, "lars@clinic.example")
    with app.app_context():
        iid = db.session.query(Invitation).one().id
    response = client.post(
        "/settings/teams/invitations/revoke", data={"invitation": iid}, headers=HX
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="invitations"')
    assert "No pending invitations." in response.text
    assert "revoked" in response.headers["HX-Trigger"]
    assert client.get(link).status_code == 410
    app.config["MAIL_SERVER"] = "127.0.0.1"
    app.config["MAIL_PORT"] = 9  # would fail loudly if the worker tried to send it
    with app.test_request_context():
        from portal.outbox.service import process_due

        process_due()
    [mail] = outbox("lars@clinic.example")
    assert mail["status"] == "done"  # dropped, not sent: sending to port 9 would have failed


def test_decline_ends_the_invitation(client, app, team, login, outbox):
    login(team["owner"])
    invite(client, "d@clinic.example")
    link = link_for(outbox, "d@clinic.example")
    client.post("/logout")
    response = client.post(link + "/decline")
    assert "You declined the invitation" in response.text
    used = client.get(link)
    assert used.status_code == 410 and "already answered" in used.text
    with app.app_context():
        assert db.session.query(Invitation).one().status == "declined"


def test_an_unknown_link_is_404_and_a_used_one_410(client, app, team, make_user, login, outbox):
    assert client.get("/invitations/not-a-real-token").status_code == 404
    erik = make_user(email="erik@clinic.example")
    login(team["owner"])
    invite(client, "erik@clinic.example")
    link = link_for(outbox, "erik@clinic.example")
    client.post("/logout")
    login(erik)
    client.post(link + "/accept")
    client.post("/logout")
    used = client.get(link)
    assert used.status_code == 410 and "already answered" in used.text
    assert "erik@clinic.example" not in used.text


def test_a_second_accept_is_a_redirect_not_a_second_membership(
    client, app, team, make_user, login, outbox
):
    erik = make_user(email="erik@clinic.example")
    login(team["owner"])
    invite(client, "erik@clinic.example")
    link = link_for(outbox, "erik@clinic.example")
    client.post("/logout")
    login(erik)
    assert client.post(link + "/accept").status_code == 303
    again = client.post(link + "/accept")
    assert again.status_code == 303 and again.headers["Location"] == "/settings/teams"
    with app.app_context():
        assert db.session.query(Membership).filter_by(user_id=erik).count() == 1
        assert db.session.query(AuditEvent).filter_by(action="invitation.accepted").count() == 1
    assert len(outbox("olga@clinic.example")) == 1


def test_the_role_comes_from_the_invitation_only(client, app, team, make_user, login, outbox):
    erik = make_user(email="erik@clinic.example")
    login(team["owner"])
    invite(client, "erik@clinic.example", role="member")
    link = link_for(outbox, "erik@clinic.example")
    client.post("/logout")
    login(erik)
    client.post(link + "/accept", data={"role": "admin", "team_id": "999"})
    with app.app_context():
        membership = db.session.query(Membership).filter_by(user_id=erik).one()
        assert (membership.role, membership.team_id) == ("member", team["id"])


def test_invitations_are_rate_limited_per_admin_at_the_boundary(client, app, team, login):
    login(team["owner"])
    fifty = " ".join(f"p{n}@clinic.example" for n in range(50))
    assert invite(client, fifty).status_code == 303
    before = snapshot(app)
    limited = invite(client, "one-more@clinic.example", headers=HX)
    assert limited.status_code == 429
    assert limited.text.lstrip().startswith('<div id="invite-form">')
    assert "Nothing was sent: you can invite 0 more people now." in limited.text
    assert snapshot(app) == before


def test_invitations_are_rate_limited_per_team_at_the_boundary(client, app, team, make_user, login):
    admins = [make_user() for _ in range(3)]
    with app.app_context():
        for admin in admins:
            db.session.add(Membership(team_id=team["id"], user_id=admin, role="admin"))
        db.session.commit()
    for n, actor in enumerate([team["owner"], *admins]):
        login(actor)
        batch = " ".join(f"t{n}-{k}@clinic.example" for k in range(50))
        assert invite(client, batch).status_code == 303
        client.post("/logout")
    another = make_user()
    with app.app_context():
        db.session.add(Membership(team_id=team["id"], user_id=another, role="admin"))
        db.session.commit()
    login(another)
    before = snapshot(app)
    assert invite(client, "201st@clinic.example").status_code == 429
    assert snapshot(app) == before


def test_resends_are_limited_to_five_an_hour_per_invitation(client, app, team, login, outbox):
    login(team["owner"])
    invite(client, "r@clinic.example")
    with app.app_context():
        iid = db.session.query(Invitation).one().id
    for _ in range(5):
        assert (
            client.post("/settings/teams/invitations/resend", data={"invitation": iid}).status_code
            == 303
        )
    before = snapshot(app)
    assert (
        client.post("/settings/teams/invitations/resend", data={"invitation": iid}).status_code
        == 429
    )
    assert snapshot(app) == before
    assert len(outbox("r@clinic.example")) == 6


def test_header_injection_and_encoded_words_are_invalid_addresses(client, app, team, login):
    login(team["owner"])
    response = invite(
        client,
        "a@x.com\r\nBcc:list@y.example =?utf-8?q?a=40evil.com?=@clinic.com "
        + "x" * 300
        + "@clinic.example",
        headers=HX,
    )
    assert response.text.count('class="result-invalid"') >= 2
    with app.app_context():
        emails = [i.email for i in db.session.query(Invitation)]
    assert all("\n" not in e and "=?" not in e and len(e) < 254 for e in emails)


def test_the_same_answer_whether_or_not_the_invitee_has_an_account(
    client, app, team, make_user, login
):
    make_user(email="has-account@clinic.example")
    login(team["owner"])
    a = invite(client, "has-account@clinic.example", headers=HX)
    b = invite(client, "no-account@clinic.example", headers=HX)
    assert "invitation sent" in a.text and "invitation sent" in b.text
    assert a.headers["HX-Trigger"].replace("has-account", "X") == b.headers["HX-Trigger"].replace(
        "no-account", "X"
    )
