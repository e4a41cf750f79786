"""Change of email address: the password and the new address ask, a link to the new address
changes it (24 h), a link to the old address undoes it (7 days) and ends every session."""

import re
import time

import pytest
from itsdangerous import TimestampSigner

from portal.auth import service as auth
from portal.auth.models import User
from portal.auth.service import TokenInvalidError
from portal.clock import utcnow
from portal.email_change import service
from portal.extensions import db
from portal.invitations import service as invitations
from portal.invitations.models import Invitation
from portal.teams.queries import membership_of
from tests.conftest import PASSWORD

HX = {"HX-Request": "true"}
OLD = "anna@clinic.example"
NEW = "anna.new@clinic.example"


@pytest.fixture
def anna(make_user):
    return make_user(email=OLD, name="Anna Jensen")


def link(outbox, to, path):
    [mail] = [m for m in outbox(to) if path in m["text"]][-1:]
    return re.search(r"http://localhost(" + re.escape(path) + r"\S+)", mail["text"]).group(1)


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def later_by(monkeypatch, seconds: int) -> None:
    """Open links as if `seconds` had passed since they were made."""
    real = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) + seconds)


def ask(app, user_id, new=NEW, password=PASSWORD):
    with app.test_request_context():
        user = db.session.get(User, user_id)
        address = service.request_change(user, password=password, new_email=new, now=utcnow())
        db.session.commit()
        return address


def confirm(app, token):
    with app.test_request_context():
        user = service.confirm_change(token, now=utcnow())
        db.session.commit()
        return user.email


def email_of(app, user_id):
    with app.app_context():
        return db.session.get(User, user_id).email


# -- service --
def test_the_change_happens_only_when_the_new_address_confirms(app, anna, outbox):
    assert ask(app, anna, new="  Anna.New@Clinic.Example ") == NEW  # normalized as sign-up does
    assert email_of(app, anna) == OLD
    [mail] = outbox(NEW)
    assert mail["subject"] == "Confirm your new email address"
    assert outbox(OLD) == []
    assert confirm(app, token_of(link(outbox, NEW, "/email/confirm/"))) == NEW
    with app.app_context():
        user = db.session.get(User, anna)
        assert user.email == NEW and user.email_changed_at is not None
        assert auth.authenticate(NEW, PASSWORD) is not None
        assert auth.authenticate(OLD, PASSWORD) is None
    [told] = outbox(OLD)
    assert told["subject"] == "Your email address was changed"
    assert "/email/undo/" in told["text"] and NEW in told["text"]


def test_a_wrong_password_or_the_same_address_is_refused(app, anna, outbox):
    with pytest.raises(service.WrongPasswordError):
        ask(app, anna, password="not the password")
    with pytest.raises(service.SameAddressError):
        ask(app, anna, new=" ANNA@clinic.example")
    assert outbox() == []


def test_the_confirmation_link_works_for_24_hours(app, anna, outbox, monkeypatch):
    ask(app, anna)
    token = token_of(link(outbox, NEW, "/email/confirm/"))
    later_by(monkeypatch, 24 * 3600 + 5)
    with pytest.raises(TokenInvalidError):
        confirm(app, token)
    monkeypatch.undo()
    later_by(monkeypatch, 24 * 3600 - 60)
    assert confirm(app, token) == NEW


def test_a_confirmation_link_is_dead_after_another_change(app, anna, outbox):
    ask(app, anna, new="first@clinic.example")
    first = token_of(link(outbox, "first@clinic.example", "/email/confirm/"))
    ask(app, anna, new="second@clinic.example")
    second = token_of(link(outbox, "second@clinic.example", "/email/confirm/"))
    assert confirm(app, second) == "second@clinic.example"
    with pytest.raises(TokenInvalidError):
        confirm(app, first)  # made for the old address
    with pytest.raises(TokenInvalidError):
        confirm(app, second)  # used
    assert email_of(app, anna) == "second@clinic.example"


def test_a_confirmation_link_cannot_be_replayed_after_an_undo(app, anna, outbox):
    ask(app, anna)
    token = token_of(link(outbox, NEW, "/email/confirm/"))
    confirm(app, token)
    with app.test_request_context():
        service.undo_change(token_of(link(outbox, OLD, "/email/undo/")), now=utcnow())
        db.session.commit()
    assert email_of(app, anna) == OLD
    with pytest.raises(TokenInvalidError):
        confirm(app, token)  # the address is the old one again, but the link is older
    assert email_of(app, anna) == OLD


def test_a_taken_address_gives_no_hint_and_its_owner_is_told(app, anna, make_user, outbox):
    make_user(email="bo@clinic.example", name="Bo Berg")
    free = ask(app, anna, new="free@clinic.example")
    taken = ask(app, anna, new="Bo@clinic.example")
    assert (free, taken) == ("free@clinic.example", "bo@clinic.example")  # the same answer
    [mail] = outbox("bo@clinic.example")
    assert mail["subject"] == "You already have an account"
    assert "Hello Bo Berg" in mail["text"] and "/email/confirm/" not in mail["text"]
    assert "/login" in mail["text"] and "/password/forgot" in mail["text"]
    assert email_of(app, anna) == OLD


def test_the_confirmation_link_checks_again_that_the_address_is_free(app, anna, make_user, outbox):
    ask(app, anna)
    token = token_of(link(outbox, NEW, "/email/confirm/"))
    make_user(email=NEW)  # someone signed up with it meanwhile
    with pytest.raises(service.AddressTakenError):
        confirm(app, token)
    assert email_of(app, anna) == OLD


def test_undo_restores_the_old_address_and_ends_every_session(app, anna, outbox, login, client):
    login(anna)
    assert client.get("/settings/account").status_code == 200
    ask(app, anna)
    confirm(app, token_of(link(outbox, NEW, "/email/confirm/")))
    assert client.get("/settings/account").status_code == 200  # a change keeps the sessions
    undo = token_of(link(outbox, OLD, "/email/undo/"))
    with app.test_request_context():
        user = service.undo_change(undo, now=utcnow())
        db.session.commit()
        assert user.email == OLD and user.email_undone_at is not None
    assert client.get("/settings/account").status_code == 302  # signed out
    with pytest.raises(TokenInvalidError), app.test_request_context():
        service.undo_change(undo, now=utcnow())  # once


def test_the_undo_link_works_for_7_days(app, anna, outbox, monkeypatch):
    ask(app, anna)
    confirm(app, token_of(link(outbox, NEW, "/email/confirm/")))
    undo = token_of(link(outbox, OLD, "/email/undo/"))
    later_by(monkeypatch, 7 * 24 * 3600 + 5)
    with pytest.raises(TokenInvalidError), app.test_request_context():
        service.undo_change(undo, now=utcnow())
    monkeypatch.undo()
    later_by(monkeypatch, 7 * 24 * 3600 - 60)
    with app.test_request_context():
        assert service.undo_change(undo, now=utcnow()).email == OLD


def test_a_second_change_does_not_disarm_the_first_undo(app, anna, outbox):
    """Someone who took the account over cannot stop the owner's undo by changing again."""
    ask(app, anna)
    confirm(app, token_of(link(outbox, NEW, "/email/confirm/")))
    first_undo = token_of(link(outbox, OLD, "/email/undo/"))
    time.sleep(0.01)
    ask(app, anna, new="third@clinic.example")
    confirm(app, token_of(link(outbox, "third@clinic.example", "/email/confirm/")))
    second_undo = token_of(link(outbox, NEW, "/email/undo/"))
    with app.test_request_context():
        assert service.undo_change(first_undo, now=utcnow()).email == OLD
        db.session.commit()
    with pytest.raises(TokenInvalidError), app.test_request_context():
        service.undo_change(second_undo, now=utcnow())  # an older change, undone since
    assert email_of(app, anna) == OLD


def test_undo_refuses_when_another_account_took_the_old_address(app, anna, make_user, outbox):
    ask(app, anna)
    confirm(app, token_of(link(outbox, NEW, "/email/confirm/")))
    make_user(email=OLD)
    with pytest.raises(service.AddressTakenError), app.test_request_context():
        service.undo_change(token_of(link(outbox, OLD, "/email/undo/")), now=utcnow())


def test_a_pending_invitation_to_the_new_address_matches_after_the_change(
    app, anna, make_user, make_team, outbox
):
    owner = make_user(email="olga@clinic.example")
    team = make_team(owner)
    with app.test_request_context():
        me = membership_of(db.session.get(User, owner))
        for address in (OLD, NEW):
            invitations.invite_members(
                me, [invitations.Entry(address, "", None)], "member", now=utcnow()
            )
        db.session.commit()

    def cases():
        with app.app_context():
            user = db.session.get(User, anna)
            rows = db.session.query(Invitation).filter_by(team_id=team).all()
            return {i.email: invitations.invitation_case(i, user, None) for i in rows}

    assert cases() == {OLD: "accept", NEW: "other_account"}
    ask(app, anna)
    confirm(app, token_of(link(outbox, NEW, "/email/confirm/")))
    assert cases() == {OLD: "other_account", NEW: "accept"}
    with app.test_request_context():
        user = db.session.get(User, anna)
        invitation = db.session.query(Invitation).filter_by(email=NEW).one()
        invitations.accept_invitation(invitation, user, now=utcnow())
        db.session.commit()
        assert membership_of(user).team_id == team


# -- views --
def test_the_account_page_asks_for_the_new_address_and_password(client, login, anna):
    login(anna)
    page = client.get("/settings/account").text
    assert 'id="email-change"' in page and 'action="/settings/account/email"' in page
    assert 'name="current_password"' in page and f"Your address: {OLD}" in page


def test_no_js_request_redirects_with_a_message_and_errors_come_back_beside_the_field(
    client, login, anna, outbox
):
    login(anna)
    wrong = client.post(
        "/settings/account/email", data={"email": NEW, "current_password": "nope nope"}
    )
    assert wrong.status_code == 422 and "<h1>Change email address</h1>" in wrong.text
    assert 'id="email-change-password-error"' in wrong.text
    bad = client.post(
        "/settings/account/email", data={"email": "not-an-address", "current_password": PASSWORD}
    )
    assert bad.status_code == 422 and 'id="email-error"' in bad.text
    done = client.post("/settings/account/email", data={"email": NEW, "current_password": PASSWORD})
    assert done.status_code == 303 and done.headers["Location"].endswith("/settings/account")
    page = client.get("/settings/account").text
    assert f"Check the new inbox: we sent a link to {NEW}." in page
    assert len(outbox(NEW)) == 1


def test_htmx_request_swaps_the_section(client, login, anna, make_user, outbox):
    login(anna)
    wrong = client.post(
        "/settings/account/email",
        data={"email": NEW, "current_password": "nope nope"},
        headers=HX,
    )
    assert wrong.status_code == 422 and wrong.text.lstrip().startswith("{#") is False
    assert '<section class="card" id="email-change"' in wrong.text and "<html" not in wrong.text
    assert "This is not your current password." in wrong.text
    make_user(email="taken@clinic.example")
    for address in (NEW, "taken@clinic.example"):
        done = client.post(
            "/settings/account/email",
            data={"email": address, "current_password": PASSWORD},
            headers=HX,
        )
        assert done.status_code == 200 and 'id="email-change-sent"' in done.text
        assert f"we sent a link to {address}." in done.text


def test_opening_the_links_changes_nothing_until_the_button_is_pressed(client, login, anna, outbox):
    ask(client.application, anna)
    url = link(outbox, NEW, "/email/confirm/")
    shown = client.get(url)
    assert shown.status_code == 200 and f"Use {NEW}" in shown.text
    assert email_of(client.application, anna) == OLD
    login(anna)
    done = client.post(url)
    assert done.status_code == 303 and done.headers["Location"].endswith("/settings/account")
    assert f"Your address: {NEW}" in client.get("/settings/account").text
    assert client.get(url).status_code == 410  # used
    undo = link(outbox, OLD, "/email/undo/")
    assert "Undo and sign out everywhere" in client.get(undo).text
    assert email_of(client.application, anna) == NEW
    undone = client.post(undo)
    assert undone.status_code == 303 and "/password/reset/" in undone.headers["Location"]
    assert email_of(client.application, anna) == OLD
    reset = client.get(undone.headers["Location"])
    assert reset.status_code == 200 and "every session is signed out" in reset.text
    assert client.get("/settings/account").status_code == 302
    assert client.get(undo).status_code == 410


def test_a_confirmation_link_of_an_address_taken_meanwhile_says_so(client, anna, make_user, outbox):
    ask(client.application, anna)
    url = link(outbox, NEW, "/email/confirm/")
    make_user(email=NEW)
    taken = client.post(url)
    assert taken.status_code == 409 and "Another account now has this address." in taken.text
    assert client.post("/email/confirm/forged").status_code == 410


def test_the_confirmation_email_is_danish_for_a_danish_account(client, make_user, outbox):
    user = make_user(email=OLD, locale="da")
    ask(client.application, user)
    [mail] = outbox(NEW)
    assert mail["subject"] == "Bekræft din nye e-mailadresse"
