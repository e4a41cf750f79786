"""Team-enforced two-step sign-in (issue 15, part 2): admins require it after a confirm step,
members without it reach only its set-up page (every GET route is walked), new members meet it
after accepting, it is audited, and the member list shows each member's status to admins."""

import pytest

from portal import permissions
from portal.audit.models import AuditEvent
from portal.audit.service import describe
from portal.auth.models import User
from portal.clock import utcnow
from portal.extensions import db
from portal.i18n import language
from portal.teams.models import Membership, Team
from portal.twofa import service
from portal.twofa.views import ALLOWED_UNTIL_SET_UP
from tests.conftest import PASSWORD
from tests.test_two_factor import code_at, enable, secret_of

SETUP = "/settings/account/two-factor/setup"
HX = {"HX-Request": "true"}


def sign_in(client, app, user_id, codes=None):
    """Log in, with a recovery code for the second step when the account has one."""
    with app.app_context():
        address = db.session.get(User, user_id).email
    response = client.post("/login", data={"email": address, "password": PASSWORD})
    assert response.status_code == 303, response.text
    if codes:
        response = client.post("/login/2fa", data={"code": codes.pop()})
        assert response.status_code == 303, response.text
    return response


@pytest.fixture
def clinic(app, make_user, make_team):
    people = {
        "olga": make_user(name="Olga Owner"),
        "mads": make_user(name="Mads Member", locale="da"),
        "sara": make_user(name="Sara Secure"),
        "anna": make_user(name="Anna Admin"),
    }
    people["team"] = make_team(
        people["olga"],
        members=[(people["mads"], "member"), (people["sara"], "member"), (people["anna"], "admin")],
    )
    _secret, people["olga_codes"] = enable(app, people["olga"])
    _secret, people["sara_codes"] = enable(app, people["sara"])
    return people


def require(app, team_id, on=True):
    with app.app_context():
        db.session.get(Team, team_id).require_two_factor = on
        db.session.commit()


def test_only_admins_may_require_two_factor(app, clinic, client):
    with app.app_context():
        member = db.session.query(Membership).filter_by(user_id=clinic["mads"]).one()
        admin = db.session.query(Membership).filter_by(user_id=clinic["anna"]).one()
        assert permissions.can_require_two_factor(admin, admin.team)
        assert not permissions.can_require_two_factor(member, member.team)
        assert not permissions.can_require_two_factor(None, admin.team)
    sign_in(client, app, clinic["mads"])
    assert client.get("/settings/teams/two-factor").status_code == 403
    assert client.post("/settings/teams/two-factor", data={"required": "1"}).status_code == 403
    with app.app_context():
        assert not db.session.get(Team, clinic["team"]).require_two_factor


def test_an_admin_without_two_factor_is_asked_to_set_it_up_first(app, clinic, client):
    sign_in(client, app, clinic["anna"])
    page = client.get("/settings/teams/two-factor")
    assert page.status_code == 200 and 'id="own-first"' in page.text
    refused = client.post("/settings/teams/two-factor", data={"required": "1"})
    assert refused.status_code == 303 and refused.location == "/settings/teams/two-factor"
    with app.app_context():
        assert not db.session.get(Team, clinic["team"]).require_two_factor


def test_the_confirm_step_lists_who_has_not_set_it_up_and_everyone_gets_an_email(
    app, clinic, client, outbox
):
    sign_in(client, app, clinic["olga"], clinic["olga_codes"])
    settings = client.get("/settings/teams/settings")
    assert 'id="team-two-factor"' in settings.text and "Require two-step sign-in…" in settings.text
    page = client.get("/settings/teams/two-factor")
    listed = page.text.split('id="missing-two-factor"', 1)[1].split("</ul>", 1)[0]
    assert "Mads Member" in listed and "Anna Admin" in listed
    assert "Sara Secure" not in listed and "Olga Owner" not in listed
    before = len(outbox())
    done = client.post("/settings/teams/two-factor", data={"required": "1"})
    assert done.status_code == 303 and done.location == "/settings/teams/settings"
    with app.test_request_context():
        assert db.session.get(Team, clinic["team"]).require_two_factor
        event = db.session.query(AuditEvent).filter_by(action="team.two_factor_on").one()
        assert event.actor_id == clinic["olga"]
        assert describe(event) == "required two-step sign-in for every member"
        with language("da"):
            assert describe(event) == "gjorde totrinslogin obligatorisk for alle medlemmer"
        mads, anna = db.session.get(User, clinic["mads"]), db.session.get(User, clinic["anna"])
        mads_email, anna_email = mads.email, anna.email
    sent = outbox()[before:]
    assert sorted(m["to"] for m in sent) == sorted([mads_email, anna_email])
    [to_mads] = [m for m in sent if m["to"] == mads_email]
    assert to_mads["subject"] == "Nørrebro Klinik kræver nu totrinslogin"  # his language
    assert "http://localhost" + SETUP in to_mads["text"]
    assert "We emailed the 2 members" in client.get("/settings/teams/settings").text


def test_turning_it_off_is_audited_and_frees_the_members(app, clinic, client):
    require(app, clinic["team"])
    sign_in(client, app, clinic["olga"], clinic["olga_codes"])
    assert "Stop requiring" in client.get("/settings/teams/settings").text
    done = client.post("/settings/teams/two-factor", data={"required": "0"}, headers=HX)
    assert done.headers["HX-Redirect"] == "/settings/teams/settings"
    with app.app_context():
        assert not db.session.get(Team, clinic["team"]).require_two_factor
        assert db.session.query(AuditEvent).filter_by(action="team.two_factor_off").count() == 1
    member = app.test_client()
    sign_in(member, app, clinic["mads"])
    assert member.get("/settings/teams").status_code == 200


def test_a_member_without_two_factor_reaches_only_set_up_logout_and_language(app, clinic, client):
    require(app, clinic["team"])
    sign_in(client, app, clinic["mads"])
    blocked = client.get("/settings/teams")
    assert blocked.status_code == 303 and blocked.location == SETUP
    htmx = client.get("/settings/teams/members", headers=HX)
    assert htmx.headers["HX-Redirect"] == SETUP
    post = client.post("/settings/account/profile", data={"name": "Changed"})
    assert post.status_code == 303 and post.location == SETUP
    with app.app_context():
        assert db.session.get(User, clinic["mads"]).name == "Mads Member"
    page = client.get(SETUP)
    assert page.status_code == 200 and 'id="two-factor-required"' in page.text
    assert "Nørrebro Klinik kræver totrinslogin" in page.text  # Mads reads Danish
    assert client.get("/healthz").status_code in (200, 503)
    switched = client.post("/language", data={"locale": "en", "next": SETUP})
    assert switched.status_code == 303 and switched.location == SETUP
    assert "Nørrebro Klinik requires two-step sign-in" in client.get(SETUP).text
    # Set up: the portal opens again.
    code = code_at(secret_of(app, clinic["mads"]), utcnow())
    assert client.post(SETUP, data={"code": code}).status_code == 200
    assert client.get("/settings/teams").status_code == 200
    assert client.post("/logout").status_code == 303


def test_members_who_use_two_factor_are_not_held(app, clinic, client):
    require(app, clinic["team"])
    sign_in(client, app, clinic["sara"], clinic["sara_codes"])
    assert client.get("/settings/teams").status_code == 200


def sample_url(rule) -> str:
    values = {}
    for name, converter in rule._converters.items():
        kind = type(converter).__name__
        values[name] = 1 if "Integer" in kind or "Id" in kind else "x"
    if rule.endpoint == "static":
        values["filename"] = "portal.css"
    return rule.build(values, append_unknown=False)[1]


def test_every_get_route_of_the_portal_sends_a_held_member_to_set_up(app, clinic, client):
    require(app, clinic["team"])
    sign_in(client, app, clinic["mads"])
    rules = [r for r in app.url_map.iter_rules() if "GET" in r.methods]
    assert len(rules) > 40  # the whole portal, not a sample
    checked = set()
    for rule in rules:
        url = sample_url(rule)
        response = client.get(url)
        if rule.endpoint in ALLOWED_UNTIL_SET_UP:
            assert response.location != SETUP, url
            assert response.status_code < 500, url
        else:
            assert (response.status_code, response.location) == (303, SETUP), url
        checked.add(rule.endpoint)
    assert {"teams.show", "account.show", "core.index", "twofa.setup", "static"} <= checked


def test_a_new_member_meets_set_up_right_after_accepting(app, clinic, client, make_user, outbox):
    from tests.test_invitations import invite, link_for

    require(app, clinic["team"])
    admin = app.test_client()
    sign_in(admin, app, clinic["olga"], clinic["olga_codes"])
    assert invite(admin, "new@clinic.example").status_code in (200, 303)
    path = link_for(outbox, "new@clinic.example")
    newcomer = make_user(email="new@clinic.example", name="Nina New")
    sign_in(client, app, newcomer)
    assert client.get(path).status_code == 200  # not a member yet: nothing holds her
    accepted = client.post(path + "/accept")
    assert accepted.status_code == 303
    with app.app_context():
        assert (
            db.session.query(Membership).filter_by(user_id=newcomer).one().team_id
            == (clinic["team"])
        )
    held = client.get(accepted.location)
    assert held.status_code == 303 and held.location == SETUP
    assert "Welcome to Nørrebro Klinik!" in client.get(SETUP).text


def test_the_member_list_shows_each_members_two_factor_status_to_admins(app, clinic, client):
    sign_in(client, app, clinic["olga"], clinic["olga_codes"])
    page = client.get("/settings/teams")
    with app.app_context():
        ids = {
            key: db.session.query(Membership).filter_by(user_id=clinic[key]).one().id
            for key in ("mads", "sara")
        }
    row = {
        k: page.text.split(f'id="member-{v}"', 1)[1].split("</tr>", 1)[0] for k, v in ids.items()
    }
    assert "2FA on" in row["sara"] and "No 2FA" not in row["sara"]
    assert "No 2FA" in row["mads"]
    member = app.test_client()
    sign_in(member, app, clinic["mads"])
    assert "2FA" not in member.get("/settings/teams").text


def test_members_without_is_the_team_only(app, clinic, make_user, make_team):
    outsider = make_user(name="Other Person")
    make_team(outsider, name="Other Klinik")
    with app.app_context():
        team = db.session.get(Team, clinic["team"])
        names = [u.name for u in service.members_without(team)]
    assert names == ["Anna Admin", "Mads Member"]
