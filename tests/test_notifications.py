"""Nobody loses access or misses a step silently: declines, removals, deleted teams, reminders."""

import re
from datetime import timedelta

import pytest

from portal.audit.models import AuditEvent
from portal.clock import utcnow
from portal.extensions import db
from portal.invitations import service as invitations
from portal.invitations.models import Invitation
from portal.team_templates.models import NoteTemplate
from portal.teams.models import Membership
from tests.test_invitations import invite, link_for


@pytest.fixture
def team(make_user, make_team):
    owner = make_user(email="olga@clinic.example", name="Olga Owner")
    return {"owner": owner, "id": make_team(owner, name="Vesterbro Klinik")}


def test_days_left_round_down_and_the_expiry_date_is_kept(app, team):
    now = utcnow()
    invitation = Invitation(expires_at=now + timedelta(hours=36))
    assert invitations.days_left(invitation, now) == 1
    assert invitations.days_left(Invitation(expires_at=now + timedelta(hours=23)), now) == 0
    assert invitations.days_left(Invitation(expires_at=now - timedelta(hours=1)), now) == 0


def test_a_decline_is_logged_under_the_invitees_address_and_the_inviter_is_told(
    client, app, team, login, outbox
):
    login(team["owner"])
    invite(client, "dora@clinic.example")
    link = link_for(outbox, "dora@clinic.example")
    client.post("/logout")
    client.post(link + "/decline")
    with app.app_context():
        event = db.session.query(AuditEvent).filter_by(action="invitation.declined").one()
        assert event.actor_name == "dora@clinic.example" and event.actor_id is None
    [told] = outbox("olga@clinic.example")
    assert told["subject"] == "dora@clinic.example declined the invitation to Vesterbro Klinik"
    assert "you can invite them again later" in told["text"]
    login(team["owner"])
    page = client.get("/settings/teams/audit").text
    assert "dora@clinic.example" in page and "Clinic Teams support" not in page


def test_a_removed_member_is_told_what_they_lost_and_that_they_are_on_free(
    client, app, team, make_user, login, outbox
):
    mads = make_user(email="mads@clinic.example", name="Mads")
    with app.app_context():
        db.session.add(Membership(team_id=team["id"], user_id=mads, role="member"))
        db.session.commit()
        membership = db.session.query(Membership).filter_by(user_id=mads).one().id
    login(team["owner"])
    assert client.post(f"/settings/teams/members/{membership}/remove").status_code == 303
    [mail] = outbox("mads@clinic.example")
    assert mail["subject"] == "You are no longer a member of Vesterbro Klinik"
    assert "Olga Owner removed you from the team Vesterbro Klinik." in mail["text"]
    assert "You no longer have the team's Pro plan." in mail["text"]
    assert "You are now on Free" in mail["text"] and "/plans" in mail["text"]


def test_deleting_a_practice_team_tells_every_member_and_can_keep_its_templates(
    client, app, make_user, make_team, login, outbox
):
    owner = make_user(email="olga@clinic.example", name="Olga Owner")
    members = [make_user(email=f"m{n}@clinic.example") for n in range(2)]
    team_id = make_team(
        owner, plan="practice", name="Klinik Syd", members=[(m, "member") for m in members]
    )
    with app.app_context():
        for title in ("SOAP", "Follow-up"):
            db.session.add(NoteTemplate(title=title, body="…", team_id=team_id))
        db.session.commit()
    login(owner)
    page = client.get("/settings/teams/delete").text
    assert "The team's 2 shared templates are deleted with the team." in page
    assert 'name="keep_templates" value="1" checked' in page
    response = client.post(
        "/settings/teams/delete", data={"confirm": "Klinik Syd", "keep_templates": "1"}
    )
    assert response.status_code == 303
    for n in range(2):
        [mail] = outbox(f"m{n}@clinic.example")
        assert "Olga Owner deleted the team Klinik Syd" in mail["text"]
        assert "Practice plan, its shared templates" in mail["text"]
    assert not [m for m in outbox("olga@clinic.example") if "no longer a member" in m["subject"]]
    with app.app_context():
        kept = db.session.query(NoteTemplate).filter_by(owner_id=owner).all()
        assert sorted(t.title for t in kept) == ["Follow-up", "SOAP"]
        assert db.session.query(NoteTemplate).filter_by(team_id=team_id).count() == 0


def test_deleting_without_the_copy_box_drops_the_team_templates(
    client, app, make_user, make_team, login
):
    owner = make_user()
    team_id = make_team(owner, plan="practice", name="Klinik Syd")
    with app.app_context():
        db.session.add(NoteTemplate(title="SOAP", body="…", team_id=team_id))
        db.session.commit()
    login(owner)
    client.post("/settings/teams/delete", data={"confirm": "Klinik Syd"})  # box unticked
    with app.app_context():
        assert db.session.query(NoteTemplate).count() == 0


def test_a_reminder_goes_out_once_five_days_before_expiry_with_a_fresh_link(
    client, app, team, login, outbox
):
    login(team["owner"])
    invite(client, "soon@clinic.example later@clinic.example")
    first = link_for(outbox, "soon@clinic.example")
    now = utcnow()
    with app.app_context():
        soon = db.session.query(Invitation).filter_by(email="soon@clinic.example").one()
        soon.expires_at = now + timedelta(days=4, hours=12)
        expires_at = soon.expires_at
        db.session.commit()
    with app.test_request_context():
        assert invitations.send_reminders(now=now) == 1
        db.session.commit()
        assert invitations.send_reminders(now=now + timedelta(hours=1)) == 0  # once
        db.session.commit()
    [_first, reminder] = outbox("soon@clinic.example")
    assert reminder["subject"].startswith("Reminder: your invitation to Vesterbro Klinik expires")
    assert len(outbox("later@clinic.example")) == 1  # 30 days left: no reminder yet
    fresh = re.search(r"http://localhost(/invitations/\S+)", reminder["text"]).group(1)
    client.post("/logout")
    assert client.get(first).status_code == 410  # replaced by the reminder's link
    assert "Vesterbro Klinik" in client.get(fresh).text
    with app.app_context():
        soon = db.session.query(Invitation).filter_by(email="soon@clinic.example").one()
        assert soon.expires_at == expires_at and soon.reminded_at is not None


def test_expired_invitations_show_their_date_and_are_resent_or_revoked_together(
    client, app, team, login, outbox
):
    login(team["owner"])
    invite(client, "a@clinic.example b@clinic.example c@clinic.example")
    with app.app_context():
        for invitation in db.session.query(Invitation).filter(
            Invitation.email != "c@clinic.example"
        ):
            invitation.expires_at = utcnow() - timedelta(days=1)
        db.session.commit()
    page = " ".join(client.get("/settings/teams").text.split())
    assert "2 invitations have expired." in page and "Resend all expired" in page
    assert "until " in page and 'Expired</strong> <br><span class="hint">on ' in page
    response = client.post(
        "/settings/teams/invitations/expired/resend", headers={"HX-Request": "true"}
    )
    assert (
        "2 expired invitations sent again, valid for 30 more days."
        in response.headers["HX-Trigger"]
    )
    assert len(outbox("a@clinic.example")) == 2 and len(outbox("c@clinic.example")) == 1
    with app.app_context():
        for invitation in db.session.query(Invitation):
            invitation.expires_at = utcnow() - timedelta(days=1)
        db.session.commit()
    assert client.post("/settings/teams/invitations/expired/revoke").status_code == 303
    with app.app_context():
        assert {i.status for i in db.session.query(Invitation)} == {"revoked"}
    assert "No pending invitations." in client.get("/settings/teams").text
