"""Malformed input is a clear 4xx, never a 500: NUL bytes (PostgreSQL refuses them in text),
CR/LF (they end up in headers), integers wider than the database's and oversized bodies."""

import io
import re
from urllib.parse import quote

import pytest

from portal.auth.models import User
from portal.clinical_sessions.models import ClinicalSession
from portal.extensions import db
from portal.invitations.models import Invitation
from portal.team_templates.models import NoteTemplate
from portal.teams.models import Membership
from tests.conftest import PASSWORD

REFUSED = "Remove the special characters from this field."
HUGE_ID = "9" * 30
HUGE = "99999999999999999999"
NUL = "a\x00b"
CRLF = "x\r\nBcc: x@y"
HX = {"HX-Request": "true"}
# Every field name the portal's forms and views read.
FIELDS = (
    "name",
    "email",
    "password",
    "current_password",
    "emails",
    "role",
    "title",
    "body",
    "specialty",
    "note",
    "date",
    "template_id",
    "scope",
    "next",
    "ref",
    "locale",
    "confirm",
    "enabled",
    "plan",
    "interval",
    "q",
    "vat",
    "line1",
    "postal_code",
    "city",
    "country",
    "clinic",
    "clinicians",
    "message",
    "team-title",
    "team-body",
    "team-specialty",
    "csrf_token",
)
QUERY_ARGS = ("q", "page", "next", "ref", "email", "view", "session_id", "clinicians")
VARIABLE = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


@pytest.fixture
def app_overrides():
    # The fuzz walk sends hundreds of requests: the rate limits would answer most with 429.
    return {"RATELIMIT_ENABLED": False}


@pytest.fixture
def admin(app, client, make_user, make_team, login):
    """A signed-in team owner (an admin) with a member, an invitation, a template and a session;
    returns the ids to put in URLs."""
    owner, member = make_user(), make_user()
    make_team(owner, plan="practice", members=[(member, "member")])
    login(owner)
    client.post("/templates", data={"title": "Check-up", "body": "Findings:"})
    client.post("/sessions", data={"title": "Visit", "date": "2024-05-01"})
    client.post("/settings/teams/invitations", data={"emails": "new@clinic.example"})
    with app.app_context():
        return {
            "template_id": db.session.query(NoteTemplate.id).scalar(),
            "session_id": db.session.query(ClinicalSession.id).scalar(),
            "membership_id": db.session.query(Membership.id).filter_by(user_id=member).scalar(),
            "invitation_id": db.session.query(Invitation.id).scalar(),
        }


def requests_for(app, ids: dict):
    """(method, path, query, form, headers) for every rule, method and malformed value."""
    rules = sorted(
        (r for r in app.url_map.iter_rules() if r.endpoint != "static"),
        # Deleting last, so the other rules reach real rows; ending sessions (logging out,
        # signing out devices: the walker's own may be among them) after all.
        key=lambda r: (
            r.rule.startswith("/logout") or r.endpoint.startswith("devices."),
            r.rule.endswith(("/delete", "/remove", "/revoke")),
        ),
    )
    for rule in rules:
        for value in (NUL, CRLF, HUGE):
            for real_ids in (False, True) if ids else (False,):

                def fill(match, value=value, real_ids=real_ids):
                    converter, name = match.groups()
                    if converter == "int":
                        return str(ids[name]) if real_ids else HUGE_ID
                    return quote(value, safe="")

                path = VARIABLE.sub(fill, rule.rule)
                query = {name: value for name in QUERY_ARGS}
                headers = HX if real_ids else {}
                for method in sorted(rule.methods & {"GET", "POST"}):
                    form = {name: value for name in FIELDS} if method == "POST" else None
                    yield method, path, query, form, headers


def walk(app, client, ids=None) -> list:
    failures = []
    for method, path, query, form, headers in requests_for(app, ids or {}):
        response = client.open(path, method=method, query_string=query, data=form, headers=headers)
        if response.status_code >= 500:
            failures.append((method, path, query["q"], headers, response.status_code))
    return failures


def test_no_route_answers_malformed_input_with_a_500_anonymously(app, client):
    assert walk(app, client) == []


def test_no_route_answers_malformed_input_with_a_500_to_a_team_admin(app, client, admin):
    assert walk(app, client, admin) == []


@pytest.mark.parametrize("value", [NUL, "x\x7fy", "x\x1by"])
def test_control_characters_in_the_login_form_are_refused_beside_the_field(
    client, make_user, value
):
    make_user(email="anna@clinic.example")
    data = {"email": value, "password": PASSWORD}
    response = client.post("/login", data=data)
    assert response.status_code == 422
    assert REFUSED in response.text


def test_a_password_with_control_characters_is_only_a_wrong_password(client, make_user):
    """Passwords are never stored or shown: any character is the person's to choose."""
    make_user(email="anna@clinic.example")
    response = client.post("/login", data={"email": "anna@clinic.example", "password": NUL})
    assert response.status_code == 422
    assert REFUSED not in response.text and "Invalid email or password." in response.text


@pytest.mark.parametrize("field", ["name", "email"])
def test_nul_in_a_signup_field_is_refused_beside_the_field(client, app, field):
    data = {"name": "Anna", "email": "anna@clinic.example", "password": PASSWORD, field: NUL}
    response = client.post("/signup", data=data)
    assert response.status_code == 422
    assert REFUSED in response.text
    with app.app_context():
        assert db.session.query(User).count() == 0


def test_a_tampered_referral_code_is_ignored_not_a_500(client, app):
    data = {"name": "Anna", "email": "anna@clinic.example", "password": PASSWORD, "ref": NUL}
    assert client.post("/signup", data=data).status_code == 200
    with app.app_context():
        assert db.session.query(User).count() == 1


@pytest.mark.parametrize("name", ["Anna\r\nBcc: x@y", "Anna\rX", "Anna\nX", "Anna\tX"])
def test_a_name_with_line_breaks_is_refused(client, app, make_user, login, name):
    user = make_user(name="Anna")
    login(user)
    response = client.post("/settings/account/profile", data={"name": name})
    assert response.status_code == 422 and REFUSED in response.text
    signup = client.post(
        "/signup", data={"name": name, "email": "new@clinic.example", "password": PASSWORD}
    )
    assert signup.status_code == 422 and REFUSED in signup.text
    with app.app_context():
        assert db.session.get(User, user).name == "Anna"


def test_a_multi_line_field_keeps_line_breaks_and_tabs_but_refuses_nul(
    client, app, make_user, login
):
    login(make_user())
    body = "Findings:\r\n\tnone\nPlan:"
    saved = client.post("/templates", data={"title": "Check-up", "body": body})
    assert saved.status_code == 303
    refused = client.post("/templates", data={"title": "Other", "body": "Findings:\x00"})
    assert refused.status_code == 422 and REFUSED in refused.text
    with app.app_context():
        assert db.session.query(NoteTemplate.body).scalar() == body


def test_a_search_or_email_with_nul_is_not_a_500(client, admin):
    assert client.get("/templates", query_string={"q": NUL}).status_code == 200
    assert client.get("/templates", query_string={"q": NUL}, headers=HX).status_code == 200
    assert client.post("/verify/resend", data={"email": NUL}).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        f"/settings/teams/members/{HUGE_ID}",
        f"/settings/teams/members/{HUGE_ID}/remove",
        f"/sessions/{HUGE_ID}",
        f"/sessions/{HUGE_ID}/edit",
        f"/templates/{HUGE_ID}",
        f"/templates/{HUGE_ID}/edit",
        f"/templates/{2**31}",
    ],
)
def test_an_id_wider_than_the_database_is_404(client, admin, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "Page not found" in response.text


def test_the_largest_id_still_reaches_the_view(client, admin):
    assert client.get(f"/templates/{2**31 - 1}").status_code == 404  # the view's, not routing's
    assert client.get(f"/templates/{admin['template_id']}").status_code == 200


@pytest.mark.parametrize("number", [HUGE, str(2**63), "-1", "0", "x", NUL])
def test_an_audit_page_out_of_range_is_not_a_500(client, admin, number):
    response = client.get("/settings/teams/audit", query_string={"page": number})
    assert response.status_code in (200, 404)


@pytest.mark.parametrize("template_id", [HUGE, str(2**31), "²", "-1", NUL])
def test_a_session_from_a_malformed_template_id_is_refused(client, app, admin, template_id):
    data = {"title": "Visit", "date": "2024-05-02", "template_id": template_id}
    assert client.post("/sessions", data=data).status_code == 422
    with app.app_context():
        assert db.session.query(ClinicalSession).count() == 1  # the fixture's


def test_a_session_from_a_template_still_starts(client, app, admin):
    data = {"date": "2024-05-02", "template_id": str(admin["template_id"])}
    assert client.post("/sessions", data=data).status_code == 303
    with app.app_context():
        assert db.session.query(ClinicalSession).count() == 2


@pytest.mark.parametrize("clinicians", [HUGE, str(2**31)])
def test_too_many_clinicians_is_a_field_error(client, clinicians):
    data = {
        "name": "Anna",
        "email": "anna@clinic.example",
        "clinic": "Klinik",
        "clinicians": clinicians,
        "country": "Danmark",
    }
    response = client.post("/contact-sales", data=data)
    assert response.status_code == 422 and "Enter a number from 1 upwards." in response.text


@pytest.mark.parametrize(
    "target",
    [
        "\r\nX",
        "/settings/teams\r\nSet-Cookie: a=b",
        "/a\tb",
        "/a\x00b",
        "/a\\b",
        "\\\\evil.example",
        " //evil.example",
        "/\x7f",
    ],
)
def test_a_next_with_control_characters_or_backslashes_goes_to_the_default(
    client, make_user, target
):
    make_user(email="anna@clinic.example")
    response = client.post(
        "/login", data={"email": "anna@clinic.example", "password": PASSWORD, "next": target}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/settings/account"


def test_a_login_link_with_crlf_in_next_logs_in_and_goes_to_the_account(client, make_user):
    make_user(email="anna@clinic.example")
    page = client.get("/login?next=%0d%0aX")
    assert page.status_code == 200
    assert '<input id="next" name="next" type="hidden" value="">' in page.text
    response = client.post(
        "/login", data={"email": "anna@clinic.example", "password": PASSWORD, "next": "\r\nX"}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/settings/account"
    direct = client.post(
        "/login?next=%0d%0aX", data={"email": "anna@clinic.example", "password": PASSWORD}
    )
    assert direct.status_code == 303 and direct.headers["Location"] == "/settings/account"


def test_language_and_logout_ignore_a_next_with_crlf(client, make_user, login):
    login(make_user())
    language = client.post("/language", data={"locale": "da", "next": "/x\r\nSet-Cookie: a=b"})
    assert language.status_code == 303 and language.headers["Location"] == "/"
    logout = client.post("/logout", data={"next": "\r\nX"})
    assert logout.status_code == 303 and logout.headers["Location"] == "/login"


def test_an_email_subject_never_carries_a_line_break(client, app, make_user, make_team, login):
    # A name saved before names refused line breaks must not break the invitation's headers.
    owner = make_user(name="Eve\rBcc: x@y\tEvil")
    make_team(owner)
    login(owner)
    client.post("/settings/teams/invitations", data={"emails": "new@clinic.example"})
    with app.app_context():
        from portal.outbox.models import OutboxMessage

        emails = db.session.query(OutboxMessage).filter_by(kind="email")
        subjects = [m.payload["subject"] for m in emails]
    assert subjects and all(not re.search(r"[\r\n\t]", s) for s in subjects)
    assert "Eve Bcc: x@y Evil invited you" in subjects[-1]


BIG = 2 * 1024 * 1024 + 1


def test_a_form_over_two_megabytes_is_413_with_a_clear_page(client):
    response = client.post("/login", data={"email": "a@b.dk", "password": "x" * BIG})
    assert response.status_code == 413
    assert "Too much data" in response.text and "<html" in response.text
    assert "larger than 2 MB" in response.text  # the limit, so the sender knows what fits


@pytest.mark.parametrize(
    ("path", "kwargs"),
    [
        ("/billing/webhook", {"data": b"{" + b" " * BIG, "content_type": "application/json"}),
        (
            "/contact-sales",
            {"data": {"message": "x", "file": (io.BytesIO(b"x" * BIG), "a.csv")}},
        ),
    ],
)
def test_any_body_over_two_megabytes_is_413(client, path, kwargs):
    response = client.post(path, **kwargs)
    assert response.status_code == 413


def test_the_413_page_is_in_danish_too(client):
    client.post("/language", data={"locale": "da"})
    response = client.post("/login", data={"password": "x" * BIG})
    assert response.status_code == 413 and "For meget data" in response.text
