"""Pages show what the worker has still to do, and refresh themselves until it is done."""

from portal.extensions import db
from portal.outbox.models import OutboxMessage
from tests.conftest import work_off_outbox

HX = {"HX-Request": "true"}


def invite(client, email):
    return client.post("/settings/teams/invitations", data={"emails": email, "role": "member"})


def test_an_invitation_shows_sending_and_polls_until_the_email_is_out(
    app, client, make_user, make_team, login
):
    owner = make_user(email="olga@clinic.example")
    make_team(owner)
    login(owner)
    invite(client, "jens@clinic.example")
    page = client.get("/settings/teams").text
    assert "sending…" in page
    assert 'hx-get="/settings/teams/invitations" hx-trigger="every 2s"' in page
    work_off_outbox(app)
    fragment = client.get("/settings/teams/invitations", headers=HX)
    assert fragment.status_code == 200 and fragment.text.startswith('<div id="invitations"')
    assert "<html" not in fragment.text
    assert "sending…" not in fragment.text and "every 2s" not in fragment.text
    # Without JavaScript the same URL is the team page.
    assert client.get("/settings/teams/invitations").status_code == 303


def test_an_invitation_whose_email_failed_says_so(app, client, make_user, make_team, login):
    owner = make_user(email="olga@clinic.example")
    make_team(owner)
    work_off_outbox(app)
    login(owner)
    invite(client, "typo@clinic.example")
    with app.app_context():
        row = db.session.query(OutboxMessage).filter_by(kind="email").one()
        row.status = "failed"
        db.session.commit()
    page = client.get("/settings/teams").text
    assert "not delivered – check the address or resend" in page
    assert "every 2s" not in page


def test_a_seat_change_shows_updating_until_stripe_has_it(app, client, make_user, make_team, login):
    owner = make_user(email="olga@clinic.example")
    member = make_user(email="mads@clinic.example")
    colleague = make_user(email="mette@clinic.example")
    make_team(owner, members=[(member, "member"), (colleague, "member")])
    work_off_outbox(app)
    login(owner)
    with app.app_context():
        from portal.teams.models import Membership

        membership = db.session.query(Membership).filter_by(user_id=member).one().id
    client.post(f"/settings/teams/members/{membership}/remove")
    page = client.get("/settings/teams").text
    assert "on the next invoice, updating…" in page
    assert 'hx-get="/settings/teams/seats" hx-trigger="every 2s"' in page
    # Members do not see billing: no billing words, and no polling, for them.
    client.post("/logout")
    login(colleague)
    page = client.get("/settings/teams").text
    assert "updating…" not in page and "every 2s" not in page
    client.post("/logout")
    login(owner)
    work_off_outbox(app)
    fragment = client.get("/settings/teams/seats", headers=HX)
    assert fragment.text.lstrip().startswith('<p id="seat-summary"')
    assert "updating…" not in fragment.text and "every 2s" not in fragment.text
