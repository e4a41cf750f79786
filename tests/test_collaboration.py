"""Practice collaboration: team templates, sessions, sharing, assistants."""

import re

import pytest

from portal.audit.models import AuditEvent
from portal.clinical_sessions.models import ClinicalSession
from portal.extensions import db
from portal.team_templates.models import NoteTemplate
from portal.teams.models import Membership, Team
from tests.conftest import PASSWORD, work_off_outbox

HX = {"HX-Request": "true"}
BODY = "Reason for visit:\n\nFindings:\n\nPlan:\n"


class World:
    def __init__(self, app, make_user, make_team, plan="practice"):
        self.app = app
        names = ("owner", "admin", "member", "assistant", "outsider", "no_team")
        self.ids = {n: make_user(email=f"{n}@clinic.example", name=n.title()) for n in names}
        self.team = make_team(
            self.ids["owner"],
            plan=plan,
            members=[
                (self.ids["admin"], "admin"),
                (self.ids["member"], "member"),
                (self.ids["assistant"], "assistant"),
            ],
        )
        other_owner = make_user(email="other-owner@clinic.example")
        make_team(
            other_owner, name="Other", plan="practice", members=[(self.ids["outsider"], "member")]
        )

    def client(self, who):
        client = self.app.test_client()
        if who != "anonymous":
            email = f"{who}@clinic.example"
            assert (
                client.post("/login", data={"email": email, "password": PASSWORD}).status_code
                == 303
            )
        return client

    def set_sharing(self, on: bool):
        self.client("admin").post("/settings/teams/sharing", data={"enabled": "1" if on else "0"})

    def audit(self, action):
        with self.app.app_context():
            return [
                e for e in db.session.query(AuditEvent).filter_by(team_id=self.team, action=action)
            ]


@pytest.fixture
def world(app, make_user, make_team):
    return World(app, make_user, make_team)


def create_template(
    client, title="Knee follow-up", scope="team", body=BODY, specialty="Orthopaedics"
):
    prefix = "team-" if scope == "team" else ""
    response = client.post(
        "/templates",
        data={
            "scope": scope,
            f"{prefix}title": title,
            f"{prefix}specialty": specialty,
            f"{prefix}body": body,
        },
    )
    assert response.status_code == 303, response.text
    return int(response.headers["Location"].rsplit("/", 1)[1])


def test_admins_curate_team_templates_and_everyone_finds_and_previews_them(world):
    admin = world.client("admin")
    template_id = create_template(admin)
    create_template(admin, title="Asthma review", specialty="Respiratory")
    assert world.audit("template.created")  # an edit writes template.updated
    member = world.client("member")
    page = member.get("/templates").text
    assert "Knee follow-up" in page and "Asthma review" in page
    assert "New team template" not in page
    found = member.get("/templates?q=KNEE", headers=HX)
    assert found.text.lstrip().startswith('<div id="team-templates">') and "<html" not in found.text
    assert "Knee follow-up" in found.text and "Asthma review" not in found.text
    assert "1 template found" in found.text
    by_specialty = member.get("/templates?q=respir").text  # the full-page fallback
    assert (
        "Asthma review" in by_specialty
        and "Knee follow-up" not in by_specialty.split("My templates")[0]
    )
    preview = member.get(f"/templates/{template_id}").text
    assert "Findings:" in preview and "Copy to my templates" in preview and "Edit" not in preview


def test_members_and_assistants_cannot_change_team_templates(world):
    template_id = create_template(world.client("admin"))
    for who in ("member", "assistant"):
        client = world.client(who)
        assert client.get(f"/templates/{template_id}/edit").status_code == 403
        assert (
            client.post(
                f"/templates/{template_id}/edit", data={"title": "X", "body": "Y"}
            ).status_code
            == 403
        )
        assert client.post(f"/templates/{template_id}/delete").status_code == 403
        assert (
            client.post(
                "/templates", data={"scope": "team", "team-title": "X", "team-body": "Y"}
            ).status_code
            == 403
        )
    with world.app.app_context():
        assert db.session.get(NoteTemplate, template_id).title == "Knee follow-up"
        assert db.session.query(NoteTemplate).count() == 1


def test_a_copy_no_longer_follows_the_original(world):
    admin = world.client("admin")
    template_id = create_template(admin)
    assistant = world.client("assistant")
    copied = assistant.post(f"/templates/{template_id}/copy")
    copy_id = int(copied.headers["Location"].rsplit("/", 1)[1])
    admin.post(f"/templates/{template_id}/edit", data={"title": "Knee v2", "body": "New sections:"})
    with world.app.app_context():
        copy = db.session.get(NoteTemplate, copy_id)
        assert (copy.title, copy.body, copy.owner_id) == (
            "Knee follow-up",
            BODY,
            world.ids["assistant"],
        )
    assert world.client("member").get(f"/templates/{copy_id}").status_code == 404  # private


def test_a_session_starts_from_a_template(world):
    template_id = create_template(world.client("admin"))
    member = world.client("member")
    response = member.post("/sessions", data={"template_id": str(template_id)})
    assert response.status_code == 303
    with world.app.app_context():
        session = db.session.query(ClinicalSession).one()
        assert (session.title, session.note, session.owner_id) == (
            "Knee follow-up",
            BODY,
            world.ids["member"],
        )
    assert (
        world.client("assistant")
        .post("/sessions", data={"template_id": str(template_id)})
        .status_code
        == 403
    )


def test_template_text_is_shown_as_text(world):
    evil = (
        '<img src=x onerror=alert(1)><div hx-post="/settings/teams/leave" hx-trigger="load">x</div>'
    )
    template_id = create_template(world.client("admin"), title="<b>T</b>", body=evil)
    page = world.client("member").get(f"/templates/{template_id}").text
    assert "<img src=x" not in page and 'hx-trigger="load"' not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;b&gt;T&lt;/b&gt;" in page


def new_session(client, title="Consultation A"):
    response = client.post(
        "/sessions", data={"title": title, "date": "2026-11-20", "note": "Private note"}
    )
    assert response.status_code == 303, response.text
    return int(response.headers["Location"].split("/")[-2])


def shared_titles(client):
    page = client.get("/sessions").text
    match = re.search(r'id="shared-sessions"(.*?)</ul>', page, re.S)
    return re.findall(r">([^<]+)</a>", match.group(1)) if match else []


def test_sharing_is_off_until_an_admin_turns_it_on(world):
    session_id = new_session(world.client("member"))
    member = world.client("member")
    assert member.post(f"/sessions/{session_id}/share").status_code == 403
    assert (
        world.client("member").post("/settings/teams/sharing", data={"enabled": "1"}).status_code
        == 403
    )
    world.set_sharing(True)
    assert [e.action for e in world.audit("team.sharing_on")] == ["team.sharing_on"]
    response = member.post(f"/sessions/{session_id}/share", headers=HX)
    assert response.status_code == 200 and response.text.lstrip().startswith(
        f'<tr id="session-{session_id}">'
    )
    assert "Shared with the team" in response.text
    assert shared_titles(world.client("assistant")) == ["Consultation A"]


def test_a_shared_view_is_audited_and_access_ends_at_once(world):
    world.set_sharing(True)
    member = world.client("member")
    session_id = new_session(member)
    member.post(f"/sessions/{session_id}/share")
    assistant = world.client("assistant")
    page = assistant.get(f"/sessions/{session_id}")
    assert page.status_code == 200 and "Shared by Member (view only)" in page.text
    [viewed] = world.audit("session.viewed")
    assert viewed.actor_id == world.ids["assistant"] and "Member: Consultation A" in viewed.target
    assert (
        "viewed the shared session Member: Consultation A"
        in world.client("admin").get("/settings/teams").text
    )
    # Not for other teams, nor for people without a team.
    assert world.client("outsider").get(f"/sessions/{session_id}").status_code == 404
    assert world.client("no_team").get(f"/sessions/{session_id}").status_code == 404
    # Unsharing ends it.
    member.post(f"/sessions/{session_id}/unshare")
    assert assistant.get(f"/sessions/{session_id}").status_code == 404
    member.post(f"/sessions/{session_id}/share")
    # Sharing off ends it.
    world.set_sharing(False)
    assert assistant.get(f"/sessions/{session_id}").status_code == 404
    world.set_sharing(True)
    assert assistant.get(f"/sessions/{session_id}").status_code == 200
    # The owner leaving ends it.
    member.post("/settings/teams/leave")
    assert assistant.get(f"/sessions/{session_id}").status_code == 404
    assert shared_titles(assistant) == []


def test_a_removed_viewer_loses_access(world):
    world.set_sharing(True)
    member = world.client("member")
    session_id = new_session(member)
    member.post(f"/sessions/{session_id}/share")
    with world.app.app_context():
        assistant_membership = (
            db.session.query(Membership).filter_by(user_id=world.ids["assistant"]).one().id
        )
    world.client("admin").post(f"/settings/teams/members/{assistant_membership}/remove")
    assert world.client("assistant").get(f"/sessions/{session_id}").status_code == 404


def test_the_team_dropping_to_pro_ends_sharing_and_team_templates(world):
    world.set_sharing(True)
    member = world.client("member")
    session_id = new_session(member)
    member.post(f"/sessions/{session_id}/share")
    template_id = create_template(world.client("admin"))
    with world.app.app_context():
        assistant_membership = (
            db.session.query(Membership).filter_by(user_id=world.ids["assistant"]).one().id
        )
    owner = world.client("owner")
    owner.post(f"/settings/teams/members/{assistant_membership}/remove")
    assert (
        owner.post(
            "/settings/teams/billing/plan",
            data={"plan": "pro", "interval": "month", "confirm": "yes"},
        ).status_code
        == 303
    )
    work_off_outbox(world.app)  # the worker makes the switch in Stripe
    admin = world.client("admin")
    assert admin.get(f"/sessions/{session_id}").status_code == 404
    assert admin.get(f"/templates/{template_id}").status_code == 404
    page = world.client("member").get("/templates").text
    assert "Team templates come with Practice" in page and "Ask your team admin" in page
    assert "Start the 14-day Practice trial" in owner.get("/templates").text


def test_assistants_are_free_and_help_without_sessions_of_their_own(world):
    assistant = world.client("assistant")
    page = assistant.get("/sessions").text
    assert "As an assistant you help your team" in page and "New session" not in page
    assert assistant.post("/sessions", data={"title": "X", "date": "2026-11-20"}).status_code == 403
    team_page = " ".join(world.client("owner").get("/settings/teams").text.split())
    assert "4 members · 3 paid seats" in team_page


def test_sessions_and_personal_templates_are_private(world):
    member = world.client("member")
    session_id = new_session(member)
    template_id = create_template(member, scope="personal", title="Mine")
    for who in ("owner", "admin", "assistant", "outsider", "no_team"):
        client = world.client(who)
        assert client.get(f"/sessions/{session_id}").status_code == 404
        assert client.get(f"/sessions/{session_id}/edit").status_code == 404
        assert client.post(f"/sessions/{session_id}/delete").status_code == 404
        assert client.post(f"/sessions/{session_id}/share").status_code == 404
        assert client.get(f"/templates/{template_id}").status_code == 404
        assert client.post(f"/templates/{template_id}/copy").status_code == 404
    with world.app.app_context():
        assert db.session.query(ClinicalSession).count() == 1


TEMPLATE_ENDPOINTS = [
    ("GET", "/templates/{team_template}", {}),
    ("GET", "/templates/{team_template}/edit", {}),
    ("POST", "/templates/{team_template}/edit", {"title": "Changed", "body": "Changed"}),
    ("POST", "/templates/{team_template}/delete", {}),
    ("POST", "/templates/{team_template}/copy", {}),
]
EXPECTED = {
    "GET /templates/{team_template}": {"owner": 200, "admin": 200, "member": 200, "assistant": 200},
    "GET /templates/{team_template}/edit": {
        "owner": 200,
        "admin": 200,
        "member": 403,
        "assistant": 403,
    },
    "POST /templates/{team_template}/edit": {
        "owner": 303,
        "admin": 303,
        "member": 403,
        "assistant": 403,
    },
    "POST /templates/{team_template}/delete": {
        "owner": 303,
        "admin": 303,
        "member": 403,
        "assistant": 403,
    },
    "POST /templates/{team_template}/copy": {
        "owner": 303,
        "admin": 303,
        "member": 303,
        "assistant": 303,
    },
}


@pytest.mark.parametrize(
    ("method", "url", "form"),
    TEMPLATE_ENDPOINTS,
    ids=[f"{m} {u}" for m, u, _ in TEMPLATE_ENDPOINTS],
)
@pytest.mark.parametrize(
    "who", ["owner", "admin", "member", "assistant", "outsider", "no_team", "anonymous"]
)
@pytest.mark.parametrize("htmx", [False, True])
def test_template_access_matrix(world, method, url, form, who, htmx):
    template_id = create_template(world.client("admin"))
    expected = EXPECTED[f"{method} {url}"].get(who, 302 if who == "anonymous" else 404)
    if htmx and who == "anonymous":
        expected = 401
    with world.app.app_context():
        before = [(t.id, t.title, t.body) for t in db.session.query(NoteTemplate)]
    client = world.client(who)
    response = client.open(
        url.format(team_template=template_id), method=method, data=form, headers=HX if htmx else {}
    )
    assert response.status_code == expected
    if expected >= 400:
        assert "Findings" not in response.text
        with world.app.app_context():
            assert [(t.id, t.title, t.body) for t in db.session.query(NoteTemplate)] == before


def test_a_pro_team_is_shown_what_practice_adds(app, make_user, make_team):
    world = World(app, make_user, make_team, plan="pro")
    owner = world.client("owner")
    templates_page = owner.get("/templates").text
    assert "Team templates come with Practice" in templates_page
    assert "Start the 14-day Practice trial" in templates_page
    assert (
        "Sharing sessions with the team comes with Practice"
        in world.client("member").get("/sessions").text
    )
    denied = owner.post("/templates", data={"scope": "team", "team-title": "X", "team-body": "Y"})
    assert denied.status_code == 403
    with app.app_context():
        assert db.session.get(Team, world.team).plan == "pro"


def test_search_finds_danish_letters_in_any_case(world):
    create_template(world.client("admin"), title="Ørebetændelse", specialty="Øre-næse-hals")
    member = world.client("member")
    for query in ("øre", "ØRE", "Ørebet", "næse"):
        found = member.get(f"/templates?q={query}", headers=HX)
        assert "Ørebetændelse" in found.text, query


def test_leaving_stops_sharing_so_rejoining_does_not_reexpose_notes(world):
    world.set_sharing(True)
    member = world.client("member")
    session_id = new_session(member)
    member.post(f"/sessions/{session_id}/share")
    member.post("/settings/teams/leave")
    with world.app.app_context():
        assert db.session.get(ClinicalSession, session_id).shared_team_id is None
        db.session.add(Membership(team_id=world.team, user_id=world.ids["member"], role="member"))
        db.session.commit()
    assert world.client("assistant").get(f"/sessions/{session_id}").status_code == 404
    assert [e.action for e in world.audit("session.unshared")] == ["session.unshared"]
