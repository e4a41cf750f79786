"""Every team endpoint × every kind of visitor: the status, and nothing changed when refused."""

import pytest

from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.invitations.models import Invitation
from portal.outbox.models import OutboxMessage
from portal.teams.models import Membership, Team

ACTORS = ("owner", "admin", "member", "other_admin", "no_team", "anonymous")


@pytest.fixture
def world(app, make_user, make_team, client):
    """Our team (owner, admin, member, a pending invitation) and another team with its own."""
    ids = {name: make_user(email=f"{name}@clinic.example") for name in ACTORS[:-1]}
    ids["victim"] = make_user(email="victim@clinic.example")
    ids["other_member"] = make_user(email="other-member@clinic.example")
    ids["team"] = make_team(
        ids["owner"],
        members=[(ids["admin"], "admin"), (ids["member"], "member"), (ids["victim"], "member")],
    )
    ids["other_team"] = make_team(
        ids["other_admin"], name="Other", members=[(ids["other_member"], "member")]
    )
    with app.test_request_context():
        from portal.auth.models import User
        from portal.clock import utcnow
        from portal.invitations import service as invitations
        from portal.teams.queries import membership_of

        for owner_key, email in (
            ("owner", "ours@clinic.example"),
            ("other_admin", "theirs@clinic.example"),
        ):
            me = membership_of(db.session.get(User, ids[owner_key]))
            invitations.invite_members(me, [invitations.Entry(email)], "member", now=utcnow())
        db.session.commit()
        by_user = {m.user_id: m.id for m in db.session.query(Membership)}
        ids["victim_membership"] = by_user[ids["victim"]]
        ids["other_membership"] = by_user[ids["other_member"]]
        ids["invitation"] = db.session.query(Invitation).filter_by(team_id=ids["team"]).one().id
        ids["other_invitation"] = (
            db.session.query(Invitation).filter_by(team_id=ids["other_team"]).one().id
        )
    return ids


def state(app):
    with app.app_context():
        return (
            sorted((t.id, t.name, t.locale, t.managed_contact) for t in db.session.query(Team)),
            sorted((m.id, m.user_id, m.role) for m in db.session.query(Membership)),
            sorted(
                (i.id, i.status, i.token_hash, i.expires_at) for i in db.session.query(Invitation)
            ),
            db.session.query(AuditEvent).count(),
            db.session.query(OutboxMessage).count(),
        )


def as_actor(client, login, world, actor):
    if actor != "anonymous":
        login(world[actor])


ALLOWED_ADMIN = {
    "owner": 303,
    "admin": 303,
    "member": 403,
    "other_admin": 404,
    "no_team": 403,
    "anonymous": 302,
}
ENDPOINTS = [
    # (method, url template, form, expected per actor)
    ("POST", "/settings/teams/members/{victim_membership}/role", {"role": "admin"}, ALLOWED_ADMIN),
    ("POST", "/settings/teams/members/{victim_membership}/remove", {}, ALLOWED_ADMIN),
    ("POST", "/settings/teams/invitations/resend", {"invitation": "{invitation}"}, ALLOWED_ADMIN),
    ("POST", "/settings/teams/invitations/revoke", {"invitation": "{invitation}"}, ALLOWED_ADMIN),
    # Ids of the other team's member and invitation: 404 for everyone in our team.
    (
        "POST",
        "/settings/teams/members/{other_membership}/role",
        {"role": "admin"},
        {"owner": 404, "admin": 404, "member": 403, "no_team": 403, "anonymous": 302},
    ),
    (
        "POST",
        "/settings/teams/members/{other_membership}/remove",
        {},
        {"owner": 404, "admin": 404, "member": 403, "no_team": 403, "anonymous": 302},
    ),
    (
        "POST",
        "/settings/teams/invitations/resend",
        {"invitation": "{other_invitation}"},
        {"owner": 404, "admin": 404, "member": 403, "no_team": 403, "anonymous": 302},
    ),
    (
        "POST",
        "/settings/teams/invitations/revoke",
        {"invitation": "{other_invitation}"},
        {"owner": 404, "admin": 404, "member": 403, "no_team": 403, "anonymous": 302},
    ),
    (
        "POST",
        "/settings/teams/invitations",
        {"emails": "new@clinic.example", "role": "member"},
        {"owner": 303, "admin": 303, "member": 403, "no_team": 403, "anonymous": 302},
    ),
    (
        "POST",
        "/settings/teams/settings",
        {"name": "Renamed", "locale": "da"},
        {"owner": 303, "admin": 303, "member": 403, "no_team": 403, "anonymous": 302},
    ),
    (
        "POST",
        "/settings/teams/delete",
        {"confirm": "Nørrebro Klinik"},
        {"owner": 303, "admin": 403, "member": 403, "no_team": 403, "anonymous": 302},
    ),
    (
        "POST",
        "/settings/teams/leave",
        {},
        {"owner": 403, "admin": 303, "member": 303, "no_team": 403, "anonymous": 302},
    ),
    (
        "GET",
        "/settings/teams/settings",
        None,
        {"owner": 200, "admin": 200, "member": 403, "no_team": 403, "anonymous": 302},
    ),
    (
        "GET",
        "/settings/teams/audit",
        None,
        {"owner": 200, "admin": 200, "member": 403, "no_team": 403, "anonymous": 302},
    ),
    (
        "GET",
        "/settings/teams/members/{victim_membership}/remove",
        None,
        {**ALLOWED_ADMIN, "owner": 200, "admin": 200},
    ),
    (
        "GET",
        "/settings/teams",
        None,
        {
            "owner": 200,
            "admin": 200,
            "member": 200,
            "other_admin": 200,
            "no_team": 200,
            "anonymous": 302,
        },
    ),
]


@pytest.mark.parametrize(
    ("method", "url", "form", "expected"),
    ENDPOINTS,
    ids=[f"{e[0]} {e[1]} {e[2]}" if e[2] else f"{e[0]} {e[1]}" for e in ENDPOINTS],
)
@pytest.mark.parametrize("actor", ACTORS)
def test_access_matrix(client, app, login, world, actor, method, url, form, expected):
    if actor not in expected:
        pytest.skip("acts on the actor's own team: covered by the other rows")
    as_actor(client, login, world, actor)
    before = state(app)
    if form:  # the resend and revoke buttons name their invitation in the form
        form = {name: value.format(**world) for name, value in form.items()}
    response = client.open(url.format(**world), method=method, data=form)
    assert response.status_code == expected[actor], response.text[:500]
    if response.status_code >= 400 or method == "GET":
        assert state(app) == before
    if response.status_code >= 400:
        assert "victim@clinic.example" not in response.text
        assert "theirs@clinic.example" not in response.text


@pytest.mark.parametrize("actor", ["member", "other_admin", "no_team"])
def test_htmx_requests_are_refused_the_same_way(client, app, login, world, actor):
    login(world[actor])
    before = state(app)
    response = client.post(
        f"/settings/teams/members/{world['victim_membership']}/remove",
        headers={"HX-Request": "true"},
    )
    assert response.status_code in (403, 404)
    assert response.headers["HX-Retarget"] == "#flash"
    assert "<html" not in response.text
    assert state(app) == before
