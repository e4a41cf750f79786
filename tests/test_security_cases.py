"""Cases of the security catalogue (shared/reference/security-cases.md) that no other test covers.

Each test names the case it checks (T07, T08, ...); docs/security.md maps every case to its tests.
Where the catalogue and DESIGN.md disagree, DESIGN.md wins (e.g. the stable /invitations/<token>).
"""

import json
import logging
import re
import threading
import time
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from portal.audit.models import AuditEvent
from portal.auth import service as auth
from portal.auth.models import User
from portal.clinical_sessions.models import ClinicalSession
from portal.clock import utcnow
from portal.extensions import db
from portal.invitations.models import Invitation
from portal.outbox.models import OutboxMessage
from portal.team_templates.models import NoteTemplate
from portal.teams.models import Membership, Team
from tests.conftest import PASSWORD, work_off_outbox
from tests.test_invitations import invite, link_for, snapshot

HX = {"HX-Request": "true"}


@pytest.fixture
def team(make_user, make_team):
    owner = make_user(email="olga@clinic.example", name="Olga Owner")
    return {"owner": owner, "id": make_team(owner, name="Vesterbro Klinik")}


def invitation_link(client, login, owner, outbox, address, role="member"):
    """The owner invites `address`; returns the link's path (/invitations/<token>), logged out."""
    login(owner)
    invite(client, address, role=role)
    client.post("/logout")
    return link_for(outbox, address)


def token_of(link: str) -> str:
    return link.rsplit("/", 1)[1]


class _Resources(HTMLParser):
    """Every URL a page makes the browser fetch or send a form to (not plain <a> links)."""

    FETCHING = {
        "script": ("src",),
        "link": ("href",),
        "img": ("src", "srcset"),
        "iframe": ("src",),
        "frame": ("src",),
        "source": ("src", "srcset"),
        "video": ("src", "poster"),
        "audio": ("src",),
        "embed": ("src",),
        "object": ("data",),
        "form": ("action",),
        "input": ("src", "formaction"),
        "button": ("formaction",),
    }

    def __init__(self):
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in self.FETCHING.get(tag, ()) and value:
                self.urls.append((tag, name, value))


def resources(html: str) -> list[tuple[str, str, str]]:
    parser = _Resources()
    parser.feed(html)
    return parser.urls


def external_resources(html: str) -> list[tuple[str, str, str]]:
    """The page's resources on another origin (anything absolute or protocol-relative)."""
    external = []
    for tag, name, value in resources(html):
        for url in value.split(",") if name == "srcset" else [value]:
            parts = urlsplit(url.strip().split(" ")[0])
            if parts.netloc or (parts.scheme and parts.scheme != "data"):
                external.append((tag, name, url))
    return external


# -- T02: an accepted link is single use, also after the member was removed --
def test_a_removed_member_cannot_rejoin_with_the_old_link(
    client, app, team, make_user, login, outbox
):
    # T02: the old link of someone removed from the team is a used link (410), no membership.
    erik = make_user(email="erik@clinic.example")
    link = invitation_link(client, login, team["owner"], outbox, "erik@clinic.example")
    login(erik)
    assert client.post(link + "/accept").status_code == 303
    client.post("/logout")
    with app.app_context():
        mid = db.session.query(Membership).filter_by(user_id=erik).one().id
    login(team["owner"])
    assert client.post(f"/settings/teams/members/{mid}/remove").status_code == 303
    client.post("/logout")
    login(erik)
    before = snapshot(app)
    again = client.post(link + "/accept")
    assert again.status_code == 410 and "already answered" in again.text
    assert client.get(link).status_code == 410
    assert snapshot(app) == before
    with app.app_context():
        assert db.session.query(Membership).filter_by(user_id=erik).count() == 0


# -- T07: the invitation URL leaks through Referer or logs --
def test_invitation_page_loads_no_third_party_resources(
    client, app, team, make_user, login, outbox
):
    # T07: DESIGN.md §9 keeps the token in the stable URL /invitations/<token>, so the page
    # itself must not hand the URL to anyone: no resource from another origin, whichever case.
    erik = make_user(email="erik@clinic.example")
    login(team["owner"])
    invite(client, "erik@clinic.example new@clinic.example")
    client.post("/logout")
    existing, new = link_for(outbox, "erik@clinic.example"), link_for(outbox, "new@clinic.example")
    pages = {"login case": client.get(existing), "signup case": client.get(new)}
    login(erik)
    pages["accept case"] = client.get(existing)
    pages["other account case"] = client.get(new)
    client.post(existing + "/accept")
    pages["used link (410)"] = client.get(existing)
    for case, page in pages.items():
        assert page.status_code in (200, 410), case
        assert ("script", "src", "/static/htmx-2.0.11.min.js") in resources(page.text), case
        assert external_resources(page.text) == [], case
        csp = page.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "img-src 'self' data:" in csp, case


def test_invitation_page_referrer_policy_is_strict_origin_when_cross_origin(
    client, app, team, make_user, login, outbox
):
    # T07 (and T33): the path with the token never goes to another origin in Referer, but
    # same-origin posts still carry a Referer, which CSRF's SSL strict mode needs.
    link = invitation_link(client, login, team["owner"], outbox, "erik@clinic.example")
    responses = [client.get(link), client.get(link + "-not-it"), client.post(link + "/decline")]
    responses.append(client.get(link))  # now answered: 410
    assert [r.status_code for r in responses] == [200, 404, 200, 410]
    for response in responses:
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_raw_invitation_token_never_reaches_the_logs(
    client, app, team, make_user, login, outbox, caplog
):
    # T07, T32: DESIGN.md §4 "never logged". Everything at DEBUG, SQL statements and their
    # parameters included, across opening the link and accepting it.
    caplog.set_level(logging.DEBUG)
    erik = make_user(email="erik@clinic.example")
    link = invitation_link(client, login, team["owner"], outbox, "erik@clinic.example")
    raw = token_of(link)
    assert raw not in caplog.text  # sending it did not log it either
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    assert client.get(link).status_code == 200
    login(erik)
    assert client.get(link).status_code == 200
    assert client.post(link + "/accept").status_code == 303
    assert client.post(link + "/accept").status_code == 303  # the second click
    client.post("/logout")
    assert client.get(link).status_code == 410
    assert caplog.records, "nothing was captured: the check would prove nothing"
    assert "SELECT" in caplog.text  # SQL logging was on
    assert raw not in caplog.text
    with app.app_context():
        assert db.session.query(Membership).filter_by(user_id=erik).count() == 1


# -- T08: token purpose and tenant scoping --
def test_account_tokens_are_not_invitation_links(client, app, team, make_user, login, outbox):
    # T08: an email-verification or password-reset token presented as an invitation: 404.
    erik = make_user(email="erik@clinic.example")
    login(team["owner"])
    invite(client, "erik@clinic.example")
    client.post("/logout")
    with app.app_context():
        user = db.session.get(User, erik)
        tokens = {"verify": auth.make_verify_token(user), "reset": auth.make_reset_token(user)}
    before = snapshot(app)
    for purpose, token in tokens.items():
        assert client.get(f"/invitations/{token}").status_code == 404, purpose
        assert client.post(f"/invitations/{token}/decline").status_code == 404, purpose
        signup = client.post(
            f"/invitations/{token}/signup", data={"name": "E", "password": "summer by the sea"}
        )
        assert signup.status_code == 404, purpose
    login(erik)
    for purpose, token in tokens.items():
        assert client.get(f"/invitations/{token}").status_code == 404, purpose
        assert client.post(f"/invitations/{token}/accept").status_code == 404, purpose
    assert snapshot(app) == before


def test_invitation_token_is_an_invalid_reset_or_verification_link(
    client, app, team, make_user, login, outbox
):
    # T08, the reverse: an invitation token at /password/reset/<t> and /verify/<t> is the
    # invalid-link page (410) and changes neither the password nor the verification.
    slow = make_user(email="slow@clinic.example", verified=False)
    link = invitation_link(client, login, team["owner"], outbox, "slow@clinic.example")
    raw = token_of(link)
    with app.app_context():
        hash_before = db.session.get(User, slow).password_hash
    before = snapshot(app)
    for response in (
        client.get(f"/password/reset/{raw}"),
        client.post(f"/password/reset/{raw}", data={"password": "taken over at last"}),
        client.get(f"/verify/{raw}"),
    ):
        assert response.status_code == 410
        assert "no longer valid" in response.text
    with app.app_context():
        user = db.session.get(User, slow)
        assert user.password_hash == hash_before and user.email_verified_at is None
    assert snapshot(app) == before
    assert client.get(link).status_code == 200  # and the invitation still works


def test_the_team_comes_from_the_invitation_row_not_the_form(
    client, app, team, make_user, make_team, login, outbox
):
    # T08 (Zulip CVE-2022-21706): a valid token paired with another team's id in the form.
    other_owner = make_user(email="other@clinic.example")
    other = make_team(other_owner, name="Other Klinik")
    login(other_owner)
    invite(client, "elsewhere@clinic.example")
    client.post("/logout")
    with app.app_context():
        other_invitation = db.session.query(Invitation).filter_by(team_id=other).one().id
    erik = make_user(email="erik@clinic.example")
    login(team["owner"])
    invite(client, "erik@clinic.example nina@clinic.example")
    client.post("/logout")
    forged = {"team_id": str(other), "team": str(other), "invitation_id": str(other_invitation)}
    login(erik)
    assert (
        client.post(link_for(outbox, "erik@clinic.example") + "/accept", data=forged).status_code
        == 303
    )
    client.post("/logout")
    signup = client.post(
        link_for(outbox, "nina@clinic.example") + "/signup",
        data={"name": "Nina", "password": "summer by the sea", **forged},
    )
    assert signup.status_code == 303
    with app.app_context():
        nina = db.session.query(User).filter_by(email="nina@clinic.example").one().id
        joined = {
            m.user_id: m.team_id
            for m in db.session.query(Membership).filter(Membership.user_id.in_([erik, nina]))
        }
        assert joined == {erik: team["id"], nina: team["id"]}
        assert {m.user_id for m in db.session.query(Membership).filter_by(team_id=other)} == {
            other_owner
        }
        assert db.session.get(Invitation, other_invitation).status == "pending"


# -- T13/T14: unverified accounts and pre-hijacking --
def test_a_preregistered_unverified_account_is_not_taken_over_through_the_link(
    client, app, team, make_user, login, outbox
):
    # T14 (pre-hijacking): an attacker registered alice@ with their own password, never verified.
    # DESIGN.md §4: an account exists, so the link asks to log in; the sign-up step refuses to
    # touch the existing account and starts no session.
    squatter = make_user(email="alice@clinic.example", verified=False, password="attackers secret")
    with app.app_context():
        hash_before = db.session.get(User, squatter).password_hash
    link = invitation_link(client, login, team["owner"], outbox, "alice@clinic.example")
    page = client.get(link).text
    assert "Log in to accept" in page and "Create account and join" not in page
    before = snapshot(app)
    response = client.post(
        link + "/signup", data={"name": "Alice", "password": "alice picks a new one"}
    )
    assert response.status_code == 303 and response.headers["Location"] == link
    assert snapshot(app) == before
    with client.session_transaction() as session:
        assert "_user_id" not in session
    with app.app_context():
        user = db.session.get(User, squatter)
        assert user.password_hash == hash_before and user.email_verified_at is None
    # The squatter's password opens nothing without the link (and the link went to Alice).
    attempt = client.post(
        "/login", data={"email": "alice@clinic.example", "password": "attackers secret"}
    )
    assert attempt.status_code == 403
    with client.session_transaction() as session:
        assert "_user_id" not in session


def test_the_real_owner_recovers_a_preregistered_address_then_accepts(
    client, app, team, make_user, login, outbox
):
    # T14: Alice resets the password (the reset mail goes to her address), which verifies the
    # address and ends every session of the account; the squatter's password then fails.
    squatter = make_user(email="alice@clinic.example", verified=False, password="attackers secret")
    link = invitation_link(client, login, team["owner"], outbox, "alice@clinic.example")
    with app.app_context():
        version_before = db.session.get(User, squatter).session_version
    client.post("/password/forgot", data={"email": "alice@clinic.example"})
    [mail] = [m for m in outbox("alice@clinic.example") if "/password/reset/" in m["text"]]
    reset = re.search(r"http://localhost(/password/reset/\S+)", mail["text"])[1]
    assert client.post(reset, data={"password": "alice picks a new one"}).status_code == 303
    with app.app_context():
        user = db.session.get(User, squatter)
        assert user.email_verified_at is not None
        assert user.session_version > version_before  # every other session ended
    old = client.post(
        "/login", data={"email": "alice@clinic.example", "password": "attackers secret"}
    )
    assert old.status_code == 422
    login(squatter, password="alice picks a new one")
    assert client.post(link + "/accept").status_code == 303
    with app.app_context():
        assert db.session.query(Membership).filter_by(user_id=squatter).one().team_id == team["id"]


def test_a_plain_signup_with_the_invited_address_is_not_joined_before_verification(
    client, app, team, login, outbox
):
    # T13: signing up on /signup (not through the link) with the invited address creates an
    # unverified account that can neither log in nor join; the invitation stays pending.
    link = invitation_link(client, login, team["owner"], outbox, "alice@clinic.example")
    response = client.post(
        "/signup",
        data={"name": "Mallory", "email": "alice@clinic.example", "password": "not alice at all"},
    )
    assert response.status_code == 200
    with app.app_context():
        user = db.session.query(User).filter_by(email="alice@clinic.example").one()
        assert user.email_verified_at is None
        assert db.session.query(Membership).filter_by(user_id=user.id).count() == 0
        assert db.session.query(Invitation).one().status == "pending"
    refused = client.post(
        "/login", data={"email": "alice@clinic.example", "password": "not alice at all"}
    )
    assert refused.status_code == 403
    with client.session_transaction() as session:
        assert "_user_id" not in session
    before = snapshot(app)
    assert client.post(link + "/accept").status_code == 302  # to the login page, nothing done
    assert snapshot(app) == before


# -- T15: email case and Unicode confusion --
def test_an_invitation_to_a_mixed_case_address_is_accepted_by_the_lower_case_account(
    client, app, team, make_user, login, outbox
):
    # T15 (a): one canonical form, compared case-insensitively (DESIGN.md §4).
    alice = make_user(email="alice@clinic.com")
    login(team["owner"])
    invite(client, "Alice@Clinic.COM")
    client.post("/logout")
    with app.app_context():
        assert db.session.query(Invitation).one().email == "alice@clinic.com"
    link = link_for(outbox, "alice@clinic.com")
    login(alice)
    assert client.post(link + "/accept").status_code == 303
    with app.app_context():
        assert db.session.query(Membership).filter_by(user_id=alice).one().team_id == team["id"]


LOOKALIKES = {
    "dotless i": "al\u0131ce@clinic.com",
    "full-width a": "\uff41lice@clinic.com",
    "combining dot": "ali\u0307ce@clinic.com",
}


@pytest.mark.parametrize("lookalike", LOOKALIKES.values(), ids=LOOKALIKES.keys())
def test_a_lookalike_account_cannot_accept_the_invitation(
    client, app, team, make_user, login, outbox, lookalike
):
    # T15 (b): an account whose address only looks like the invited one gets the mismatch
    # page and 403, with nothing changed.
    impostor = make_user(email=lookalike)
    login(team["owner"])
    invite(client, "Alice@Clinic.COM")
    client.post("/logout")
    link = link_for(outbox, "alice@clinic.com")
    login(impostor)
    page = client.get(link)
    assert page.status_code == 200 and "This invitation is for alice@clinic.com" in page.text
    before = snapshot(app)
    assert client.post(link + "/accept").status_code == 403
    assert client.post(link + "/decline").status_code == 403
    assert snapshot(app) == before


@pytest.mark.parametrize("lookalike", LOOKALIKES.values(), ids=LOOKALIKES.keys())
def test_a_password_reset_for_a_lookalike_address_sends_nothing(
    client, app, make_user, outbox, lookalike
):
    # T15 (c): a reset asked for a confusable address reaches nobody, the real user included,
    # and the page says the same as for any address.
    make_user(email="alice@clinic.com")
    response = client.post("/password/forgot", data={"email": lookalike})
    assert response.status_code in (200, 422)
    assert outbox() == []


def test_a_reset_that_matches_after_lower_casing_goes_only_to_the_stored_address(
    client, app, make_user, outbox
):
    # T15 (c), Django CVE-2019-19844: str.lower() maps the Kelvin sign to "k", so this matches
    # karen@; the mail must go to the stored address, never to the one that was typed.
    make_user(email="karen@clinic.com")
    client.post("/password/forgot", data={"email": "\u212aAREN@clinic.com"})
    assert {mail["to"] for mail in outbox()} <= {"karen@clinic.com"}


# -- T18: open redirect through next, alone and on the way to an invitation --
@pytest.mark.parametrize(
    "target",
    ["https:evil.example", "%2F%2Fevil.example", "///evil.example", "\\\\evil.example"],
)
def test_login_from_an_invitation_never_redirects_off_site(
    client, app, team, make_user, login, outbox, target
):
    # T18: the catalogue's values test_auth does not try, and each glued to an invitation link.
    make_user(email="erik@clinic.example")
    link = invitation_link(client, login, team["owner"], outbox, "erik@clinic.example")
    for next_value in (target, link + "/../../" + target, target + link):
        response = client.post(
            "/login",
            data={"email": "erik@clinic.example", "password": PASSWORD, "next": next_value},
        )
        assert response.status_code == 303
        location = urlsplit(response.headers["Location"])
        assert not location.scheme and not location.netloc, response.headers["Location"]
        assert response.headers["Location"].startswith("/")
        assert not response.headers["Location"].startswith(("//", "/\\"))
        client.post("/logout")


# -- T21: mass assignment of team_id / owner_id --
def test_a_template_lands_in_the_admins_own_team_whatever_team_id_is_posted(
    client, app, make_user, make_team, login
):
    # T21: team_id, owner_id and created_by_id in the body are ignored on create and edit.
    admin, other_admin = make_user(), make_user()
    ours = make_team(admin, plan="practice", name="Ours")
    theirs = make_team(other_admin, plan="practice", name="Theirs")
    forged = {
        name: str(value)
        for key, value in (
            ("team_id", theirs),
            ("owner_id", other_admin),
            ("created_by_id", other_admin),
        )
        for name in (key, f"team-{key}")
    }
    login(admin)
    created = client.post(
        "/templates",
        data={"scope": "team", "team-title": "Knee", "team-body": "Findings:", **forged},
    )
    assert created.status_code == 303
    template_id = int(created.headers["Location"].rsplit("/", 1)[1])
    edited = client.post(
        f"/templates/{template_id}/edit", data={"title": "Knee v2", "body": "Plan:", **forged}
    )
    assert edited.status_code == 303
    personal = client.post(
        "/templates", data={"scope": "personal", "title": "Mine", "body": "Notes:", **forged}
    )
    assert personal.status_code == 303
    personal_id = int(personal.headers["Location"].rsplit("/", 1)[1])
    with app.app_context():
        template = db.session.get(NoteTemplate, template_id)
        assert (template.team_id, template.owner_id, template.created_by_id) == (ours, None, admin)
        assert template.title == "Knee v2"
        mine = db.session.get(NoteTemplate, personal_id)
        assert (mine.team_id, mine.owner_id, mine.created_by_id) == (None, admin, admin)
        assert db.session.query(NoteTemplate).filter_by(team_id=theirs).count() == 0
        assert db.session.query(NoteTemplate).filter_by(owner_id=other_admin).count() == 0
        assert [e.action for e in db.session.query(AuditEvent).filter_by(team_id=theirs)] == [
            "team.created"
        ]
    client.post("/logout")
    login(other_admin)
    assert "Knee" not in client.get("/templates").text
    assert client.get(f"/templates/{template_id}").status_code == 404


# -- T32: audit trail without secrets --
def test_audit_rows_and_logs_hold_no_tokens_or_passwords(
    client, app, team, make_user, login, outbox, caplog
):
    # T32: each action writes its entry; no raw token or password is in an entry or a log line.
    caplog.set_level(logging.DEBUG)
    member = make_user(email="mads@clinic.example")
    wrong_password = "wrong guess number nine"
    secrets_seen = {PASSWORD, wrong_password}
    assert (
        client.post(
            "/login", data={"email": "olga@clinic.example", "password": wrong_password}
        ).status_code
        == 422
    )
    login(team["owner"])
    invite(client, "mads@clinic.example revoked@clinic.example")
    with app.app_context():
        ids = {i.email: i.id for i in db.session.query(Invitation)}
    secrets_seen.add(token_of(link_for(outbox, "revoked@clinic.example")))
    client.post(
        "/settings/teams/invitations/resend", data={"invitation": ids["revoked@clinic.example"]}
    )
    secrets_seen.add(token_of(link_for(outbox, "revoked@clinic.example")))
    client.post(
        "/settings/teams/invitations/revoke", data={"invitation": ids["revoked@clinic.example"]}
    )
    invite(client, "nina@clinic.example")
    client.post("/logout")
    mads_link = link_for(outbox, "mads@clinic.example")
    nina_link = link_for(outbox, "nina@clinic.example")
    secrets_seen |= {token_of(mads_link), token_of(nina_link)}
    login(member)
    assert client.post(mads_link + "/accept").status_code == 303
    client.post("/logout")
    nina_password = "nina sings in the choir"
    secrets_seen.add(nina_password)
    signup = client.post(nina_link + "/signup", data={"name": "Nina", "password": nina_password})
    assert signup.status_code == 303
    client.post("/logout")
    client.post("/password/forgot", data={"email": "olga@clinic.example"})
    reset = re.search(
        r"http://localhost(/password/reset/\S+)", outbox("olga@clinic.example")[-1]["text"]
    )[1]
    new_password = "olga has a fresh passphrase"
    secrets_seen |= {token_of(reset), new_password}
    assert client.post(reset, data={"password": new_password}).status_code == 303
    login(team["owner"], password=new_password)
    with app.app_context():
        mid = db.session.query(Membership).filter_by(user_id=member).one().id
    assert (
        client.post(f"/settings/teams/members/{mid}/role", data={"role": "admin"}).status_code
        == 303
    )
    assert client.post(f"/settings/teams/members/{mid}/remove").status_code == 303
    details = {"name": "Klinik ApS", "email": "bill@clinic.example", "country": "DK"}
    assert client.post("/settings/teams/billing/details", data=details).status_code == 303
    work_off_outbox(app)  # the worker saves the details in Stripe and writes the entry
    with app.app_context():
        events = db.session.query(AuditEvent).filter_by(team_id=team["id"]).all()
        rows = [
            " ".join((e.actor_name or "", e.action, e.target or "", json.dumps(e.details)))
            for e in events
        ]
        actions = [e.action for e in events]
    for action in (
        "invitation.sent",
        "invitation.resent",
        "invitation.revoked",
        "invitation.accepted",
        "member.role",
        "member.removed",
        "billing.details_changed",
    ):
        assert action in actions, action
    assert all(e.created_at is not None for e in events)
    assert caplog.records
    for secret in secrets_seen:
        assert secret not in caplog.text
        assert not any(secret in row for row in rows)


def test_audit_entries_cannot_be_forged_with_line_breaks_in_what_admins_type(
    client, app, team, login
):
    # T32: CR/LF in a team name (whether the form refuses it or not) never reaches an entry.
    login(team["owner"])
    client.post(
        "/settings/teams/settings",
        data={"name": "Klinik\r\n12:00 — Olga Owner removed everyone", "locale": "en"},
    )
    with app.app_context():
        for event in db.session.query(AuditEvent):
            assert "\r" not in event.target and "\n" not in event.target


def test_audit_entries_cannot_be_forged_with_line_breaks_in_an_actors_name(app, team):
    # T32: the actor's name is written into every entry they cause; a name that got CR/LF in
    # some way (an import, an old row, an API) must not forge a second line in the log.
    from portal.audit import service as audit

    with app.app_context():
        owner = db.session.get(User, team["owner"])
        owner.name = "Olga\r\n12:00 — Support removed everyone"
        event = audit.record(team["id"], "team.renamed", actor=owner, now=utcnow(), target="X")
        assert "\r" not in event.actor_name and "\n" not in event.actor_name
        db.session.rollback()


# -- T31 / T34: cookie attributes, timeouts and HSTS in production --
def test_a_session_older_than_the_absolute_limit_ends_although_it_was_active(
    app, client, make_user, login
):
    # T31: the idle limit is tested in test_edge_cases; this is the absolute one (login time
    # kept in the session, checked on the server).
    login(make_user())
    with client.session_transaction() as session:
        session["login_at"] = time.time() - app.config["PERMANENT_SESSION_LIFETIME"] - 60
        session["seen_at"] = time.time()
    response = client.get("/settings/account")
    assert response.status_code in (302, 303)
    assert response.headers["Location"].startswith("/login")
    with client.session_transaction() as session:
        assert "_user_id" not in session


def test_production_sends_hsts_and_a_host_only_secure_httponly_session_cookie(monkeypatch):
    # T31, T34: what the browser is told, read from the response (test_app checks the config).
    from portal import create_app
    from tests.test_app import PRODUCTION

    monkeypatch.delenv("FLASK_PORTAL_DEV", raising=False)
    live = create_app(PRODUCTION)
    response = live.test_client().get("/login", base_url=PRODUCTION["PUBLIC_URL"])
    assert response.status_code == 200
    hsts = response.headers["Strict-Transport-Security"]
    max_age = int(re.search(r"max-age=(\d+)", hsts)[1])
    assert max_age >= 365 * 86400 and "includeSubDomains" in hsts
    [cookie] = [c for c in response.headers.getlist("Set-Cookie") if "session=" in c]
    assert cookie.startswith("__Host-session=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "path", "samesite"} <= attributes
    assert "domain" not in attributes
    assert "SameSite=Lax" in cookie and "Path=/" in cookie


# -- T35: no PHI in browser caches --
def test_phi_pages_are_never_cached_and_vary_on_hx_request(app, make_user, make_team):
    # T35: pages with clinical notes, templates, members and billing answer no-store and
    # Vary: HX-Request, as full pages and as htmx fragments; full pages keep no htmx history.
    owner, member = make_user(email="owner@clinic.example"), make_user(email="m@clinic.example")
    make_team(owner, plan="practice", members=[(member, "member")])
    owner_client, member_client = app.test_client(), app.test_client()
    for client, email in (
        (owner_client, "owner@clinic.example"),
        (member_client, "m@clinic.example"),
    ):
        assert client.post("/login", data={"email": email, "password": PASSWORD}).status_code == 303
    created = member_client.post(
        "/sessions", data={"title": "Consultation", "date": "2026-11-20", "note": "Private note"}
    )
    session_id = int(re.search(r"/sessions/(\d+)", created.headers["Location"])[1])
    template = owner_client.post(
        "/templates", data={"scope": "team", "team-title": "Knee", "team-body": "Findings:"}
    )
    template_id = int(template.headers["Location"].rsplit("/", 1)[1])
    with app.app_context():
        assert db.session.get(ClinicalSession, session_id).note == "Private note"
    pages = [
        (member_client, "/sessions"),
        (member_client, f"/sessions/{session_id}"),
        (member_client, f"/sessions/{session_id}/edit"),
        (member_client, "/templates"),
        (member_client, f"/templates/{template_id}"),
        (member_client, "/settings/account"),
        (member_client, "/settings/teams"),
        (owner_client, "/settings/teams"),
        (owner_client, "/settings/teams/audit"),
        (owner_client, "/settings/teams/billing"),
    ]
    for client, path in pages:
        for headers in ({}, HX):
            response = client.get(path, headers=headers)
            assert response.status_code == 200, (path, headers)
            assert "no-store" in response.headers["Cache-Control"], (path, headers)
            assert "HX-Request" in response.headers.get("Vary", ""), (path, headers)
            if "<html" in response.text:
                assert '"historyCacheSize":0' in response.text, path
                assert external_resources(response.text) == [], path


# -- T48: a double-submitted invitation --
@pytest.mark.postgres
def test_a_double_submitted_invitation_creates_one_invitation_and_one_email(
    app, make_user, make_team
):
    # T48: two submits of the same address at once (a double click). The second request reads
    # before the first commits, so it cannot see it and tries to insert too; the partial unique
    # index makes it wait, then fail, and it answers "already invited" with no second email.
    # (One after the other, DESIGN.md §4 resends instead: tests/test_invitations.py.)
    from portal.invitations import service as invitations
    from portal.teams.queries import membership_of

    owner = make_user(email="owner@clinic.example")
    team_id = make_team(owner)
    first_flushed, results, errors = threading.Event(), {}, []

    def submit(name, after=None, hold=0.0):
        try:
            with app.test_request_context():
                if after is not None:
                    after.wait(10)
                me = membership_of(db.session.get(User, owner))
                [result] = invitations.invite_members(
                    me, [invitations.Entry("twice@clinic.example")], "member", now=utcnow()
                )
                results[name] = result.outcome
                if name == "first":
                    first_flushed.set()
                    time.sleep(hold)  # the second reaches its insert meanwhile
                db.session.commit()
                db.session.remove()
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
            first_flushed.set()

    threads = [
        threading.Thread(target=submit, args=("first",), kwargs={"hold": 1.0}),
        threading.Thread(target=submit, args=("second",), kwargs={"after": first_flushed}),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert results == {"first": "invited", "second": "already_invited"}
    with app.app_context():
        pending = db.session.query(Invitation).filter_by(team_id=team_id, status="pending")
        assert pending.count() == 1
        emails = [
            m
            for m in db.session.query(OutboxMessage).filter_by(kind="email")
            if m.payload["to"] == "twice@clinic.example"
        ]
        assert len(emails) == 1
        sent = db.session.query(AuditEvent).filter_by(team_id=team_id, action="invitation.sent")
        assert sent.count() == 1
        assert db.session.get(Team, team_id) is not None
