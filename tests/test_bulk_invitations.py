"""Bulk onboarding: pasted lists with names, a CSV preview with a role per row, the price line."""

import io
import re

import pytest

from portal.extensions import db
from portal.invitations import service as invitations
from portal.invitations.models import Invitation
from portal.teams.models import Membership
from tests.test_invitations import HX, invite

CSV = (
    "email,name,role\n"
    "anna@klinik.dk,Anna Jensen,admin\n"
    "bo@klinik.dk,Bo Hansen,\n"
    "mads@clinic.example,Mads,member\n"
    "not-an-address,Nobody,member\n"
    "hanne@klinik.dk,Hanne,assistant\n"
)


@pytest.fixture
def team(make_user, make_team):
    owner = make_user(email="olga@clinic.example", name="Olga Owner")
    return {"owner": owner, "id": make_team(owner, name="Vesterbro Klinik")}


def test_pasted_lists_from_mail_programs_and_spreadsheets_are_read_with_names():
    entries = invitations.parse_entries(
        'Anna Jensen <anna@klinik.dk>; Bo Hansen <bo@klinik.dk>\n"Jensen, Eva" <eva@klinik.dk>,'
        " kim@klinik.dk\nlis@klinik.dk ole@klinik.dk;ANNA@klinik.dk"
    )
    assert [(e.typed, e.name) for e in entries] == [
        ("anna@klinik.dk", "Anna Jensen"),
        ("bo@klinik.dk", "Bo Hansen"),
        ("eva@klinik.dk", "Jensen, Eva"),
        ("kim@klinik.dk", ""),
        ("lis@klinik.dk", ""),
        ("ole@klinik.dk", ""),
    ]


def test_a_csv_is_read_with_or_without_header_semicolons_and_excel_encodings():
    rows = invitations.parse_csv("anna@klinik.dk;Anna Ørsted;Admin\n".encode("cp1252"))
    assert [(e.typed, e.name, e.role) for e in rows] == [("anna@klinik.dk", "Anna Ørsted", "admin")]
    rows = invitations.parse_csv(("\ufeff" + CSV).encode())
    assert [e.typed for e in rows][:2] == ["anna@klinik.dk", "bo@klinik.dk"]
    assert rows[1].role is None  # blank: the role chosen in the form
    with pytest.raises(invitations.CsvError, match="no rows"):
        invitations.parse_csv(b"email,name,role\n")
    with pytest.raises(invitations.CsvError, match="too large"):
        invitations.parse_csv(b"a" * (invitations.CSV_MAX_BYTES + 1))


def test_a_pasted_name_prefills_the_invitees_sign_up(client, app, team, login, outbox):
    login(team["owner"])
    invite(client, "Anna Jensen <anna@klinik.dk>")
    with app.app_context():
        assert db.session.query(Invitation).one().name == "Anna Jensen"
    link = re.search(r"http://localhost(/invitations/\S+)", outbox("anna@klinik.dk")[0]["text"])[1]
    client.post("/logout")
    assert 'value="Anna Jensen"' in client.get(link).text


def upload(client, text=CSV, role="member", **kwargs):
    data = {"csv": (io.BytesIO(text.encode()), "team.csv"), "role": role}
    return client.post(
        "/settings/teams/invitations/preview",
        data=data,
        content_type="multipart/form-data",
        **kwargs,
    )


def test_a_csv_upload_previews_each_row_and_the_price_and_sends_nothing(
    client, app, team, make_user, login, outbox
):
    mads = make_user(email="mads@clinic.example", name="Mads")
    with app.app_context():
        db.session.add(Membership(team_id=team["id"], user_id=mads, role="member"))
        db.session.commit()
    login(team["owner"])
    page = upload(client)
    assert page.status_code == 200
    text = " ".join(page.text.split())
    rows = re.findall(r'<tr class="result-(\w+)"> <td>([^<]+)</td>', text)
    assert {email: outcome for outcome, email in rows} == {
        "anna@klinik.dk": "invited",
        "bo@klinik.dk": "invited",
        "mads@clinic.example": "member",
        "not-an-address": "invalid",
        "hanne@klinik.dk": "role",  # assistants exist on Practice only
    }
    assert "will be invited" in text and "already a member" in text
    assert "When everyone accepts, the team has 4 paid seats" in text  # owner, Mads, Anna, Bo
    assert "Send 2 invitations" in text
    assert '<option value="admin" selected>' in text  # Anna's role from the file
    with app.app_context():
        assert db.session.query(Invitation).count() == 0
    assert outbox("anna@klinik.dk") == []


def test_danish_role_words_are_read_and_an_unknown_role_is_named(client, team, login):
    # A Danish clinic's spreadsheet says "Medlem"; a role the portal does not know is said to
    # be unknown, with the words that work, not mistaken for a role the plan does not allow.
    login(team["owner"])
    page = upload(
        client,
        "anna@klinik.dk;Anna;Medlem\nbo@klinik.dk;Bo;Administrator\nkim@klinik.dk;Kim;chef\n",
    )
    text = " ".join(page.text.split())
    rows = re.findall(r'<tr class="result-(\w+)"> <td>([^<]+)</td>', text)
    assert {email: outcome for outcome, email in rows} == {
        "anna@klinik.dk": "invited",
        "bo@klinik.dk": "invited",
        "kim@klinik.dk": "unknown_role",
    }
    assert "unknown role “chef”: use member, admin or assistant" in text
    assert '<option value="admin" selected>' in text  # Bo's role, read from the Danish word


def test_the_previewed_rows_go_out_with_the_roles_chosen_in_the_preview(
    client, app, team, login, outbox
):
    login(team["owner"])
    response = client.post(
        "/settings/teams/invitations/bulk",
        data={
            "email": ["anna@klinik.dk", "bo@klinik.dk"],
            "name": ["Anna Jensen", "Bo Hansen"],
            "role": ["admin", "member"],
        },
    )
    assert response.status_code == 303
    with app.app_context():
        rows = {i.email: (i.name, i.role) for i in db.session.query(Invitation)}
    assert rows == {
        "anna@klinik.dk": ("Anna Jensen", "admin"),
        "bo@klinik.dk": ("Bo Hansen", "member"),
    }
    assert len(outbox("anna@klinik.dk")) == 1
    page = client.get("/settings/teams").text
    assert "Invitation sent to anna@klinik.dk." in page


def test_the_preview_and_the_send_work_with_htmx_and_keep_the_admin_rules(
    client, app, team, make_user, login
):
    login(team["owner"])
    fragment = upload(client, headers=HX)
    assert fragment.text.lstrip().startswith('<div id="invite-form">')
    assert "Check the invitations before they go out" in fragment.text
    assert "invitations ready to send" in fragment.headers["HX-Trigger"]
    bad = upload(client, text="", headers=HX)
    assert bad.status_code == 422 and "The file has no rows" in bad.text
    member = make_user(email="m@clinic.example")
    with app.app_context():
        db.session.add(Membership(team_id=team["id"], user_id=member, role="member"))
        db.session.commit()
    client.post("/logout")
    from tests.conftest import PASSWORD

    client.post("/login", data={"email": "m@clinic.example", "password": PASSWORD})
    assert upload(client).status_code == 403
    assert (
        client.post("/settings/teams/invitations/bulk", data={"email": ["x@y.dk"]}).status_code
        == 403
    )


def test_the_price_line_follows_the_addresses_typed_and_offers_help_from_ten(client, team, login):
    login(team["owner"])
    three = client.post(
        "/settings/teams/invitations/price",
        data={"emails": "a@k.dk\nBo <b@k.dk>; c@k.dk", "role": "member"},
        headers=HX,
    )
    assert "At 4 paid seats the team pays" in three.text and "Large team?" not in three.text
    ten = " ".join(f"p{n}@k.dk" for n in range(10))
    many = client.post(
        "/settings/teams/invitations/price", data={"emails": ten, "role": "member"}, headers=HX
    )
    assert "At 11 paid seats" in many.text and "Large team? Talk to us" in many.text
    assert 'href="/contact' in many.text


def test_the_invite_hint_shows_the_name_and_address_example_as_text(client, team, login):
    # Flask-Babel's lazy strings count as safe HTML (flask-babel#121): the field macro escapes hints.
    login(team["owner"])
    page = client.get("/settings/teams")
    assert "Anna Jensen &lt;anna@klinik.dk&gt;" in page.text
    assert "<anna@klinik.dk>" not in page.text


def test_the_csv_upload_has_a_page_of_its_own_linked_from_the_invite_box(
    client, app, team, make_user, login
):
    login(team["owner"])
    box = client.get("/settings/teams").text
    assert (
        'href="/settings/teams/invitations/upload">Inviting many people? Upload a CSV file' in box
    )
    assert 'type="file"' not in box  # the team page renders one form to invite with
    page = client.get("/settings/teams/invitations/upload")
    assert page.status_code == 200
    assert '<input accept=".csv,text/csv" aria-describedby="csv-hint" id="csv"' in page.text
    assert '<label for="csv">CSV file</label>' in page.text
    assert 'hx-post="/settings/teams/invitations/preview"' in page.text
    # Without JavaScript a refused file comes back on the upload page, the error beside it.
    bad = upload(client, text="")
    assert bad.status_code == 422
    assert "<h1>Upload a CSV file</h1>" in bad.text
    assert 'aria-invalid="true"' in bad.text and "The file has no rows" in bad.text
    # The preview is a page of its own too; its send button is a plain post back to the team.
    preview = upload(client)
    assert "<h1>Upload a CSV file</h1>" in preview.text
    assert (
        '<form method="post" action="/settings/teams/invitations/bulk" novalidate>' in preview.text
    )
    member = make_user(email="m@clinic.example")
    with app.app_context():
        db.session.add(Membership(team_id=team["id"], user_id=member, role="member"))
        db.session.commit()
    login(member)
    assert client.get("/settings/teams/invitations/upload").status_code == 403


def test_the_invite_box_keeps_what_was_typed_and_says_what_is_wrong_beside_it(client, team, login):
    login(team["owner"])
    page = client.get("/settings/teams").text
    assert '<label for="emails">Email addresses</label>' in page
    assert '<textarea id="emails" name="emails" rows="3" aria-describedby="emails-hint"' in page
    assert '<option value="member" selected>Member</option>' in page
    refused = client.post("/settings/teams/invitations", data={"emails": "", "role": "admin"})
    assert refused.status_code == 422
    text = refused.text
    assert 'aria-describedby="emails-hint emails-error" aria-invalid="true"' in text
    assert '<p class="error" id="emails-error">Enter at least one email address.</p>' in text
    assert '<option value="admin" selected>Admin</option>' in text
    htmx = client.post(
        "/settings/teams/invitations", data={"emails": "", "role": "member"}, headers=HX
    )
    assert htmx.status_code == 422 and htmx.text.lstrip().startswith('<div id="invite-form">')
    assert "<html" not in htmx.text


def test_a_csv_saved_with_old_mac_line_endings_is_read(client, team, login):
    # Excel's "CSV (Macintosh)" ends lines with CR only: read, not a 500.
    login(team["owner"])
    page = upload(client, text="anna@klinik.dk,Anna\rbo@klinik.dk,Bo\r")
    assert page.status_code == 200
    rows = re.findall(r'<tr class="result-(\w+)"> <td>([^<]+)</td>', " ".join(page.text.split()))
    assert [email for _outcome, email in rows] == ["anna@klinik.dk", "bo@klinik.dk"]


def test_a_long_pasted_name_is_cut_like_the_csv_ones(client, app, team, login):
    from tests.test_invitations import invite

    login(team["owner"])
    assert invite(client, f'"{"A" * 130}" <longname@clinic.example>').status_code == 303
    with app.app_context():
        assert db.session.query(Invitation).one().name == "A" * 120
