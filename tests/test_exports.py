"""CSV exports: the member list and the filtered activity log, for admins, safe in a spreadsheet."""

import csv
import io
from datetime import timedelta

import pytest

from portal.audit import service as audit
from portal.audit.models import AuditEvent
from portal.auth.models import User
from portal.clock import utcnow
from portal.exports.service import safe_cell
from portal.extensions import db
from portal.teams.models import Membership
from tests.conftest import PASSWORD


@pytest.fixture
def team(app, make_user, make_team):
    owner = make_user(email="olga@clinic.example", name="Olga Owner")
    mads = make_user(email="mads@clinic.example", name='=HYPERLINK("http://x")')
    hanne = make_user(email="hanne@clinic.example", name="Hanne")
    team_id = make_team(owner, plan="practice", members=[(mads, "admin"), (hanne, "assistant")])
    with app.app_context():
        db.session.get(User, hanne).last_seen_at = utcnow() - timedelta(days=3)
        db.session.commit()
    return {"id": team_id, "owner": owner, "mads": mads, "hanne": hanne}


def rows_of(response):
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment;" in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")  # Excel reads UTF-8
    return list(csv.reader(io.StringIO(text[1:])))


def test_admins_download_the_member_list_with_seats_and_last_active(client, app, team, login):
    login(team["owner"])
    rows = rows_of(client.get("/settings/teams/members.csv"))
    assert rows[0] == ["name", "email", "role", "seat", "joined", "last_active"]
    by_email = {row[1]: row for row in rows[1:]}
    assert rows[1][1] == "olga@clinic.example"  # the owner first
    assert by_email["hanne@clinic.example"][2:4] == ["assistant", "free"]
    assert by_email["mads@clinic.example"][2:4] == ["admin", "paid"]
    assert by_email["hanne@clinic.example"][5]  # last active
    # A name that a spreadsheet would run as a formula is written as text.
    assert by_email["mads@clinic.example"][0] == '\'=HYPERLINK("http://x")'
    with app.app_context():
        assert db.session.query(AuditEvent).filter_by(action="export.members").count() == 1


def test_the_activity_export_filters_by_person_action_and_dates(client, app, team, login):
    now = utcnow()
    with app.app_context():
        olga = db.session.get(User, team["owner"])
        audit.record(
            team["id"],
            "invitation.sent",
            actor=olga,
            now=now - timedelta(days=10),
            target="old@clinic.example",
        )
        audit.record(
            team["id"], "invitation.sent", actor=olga, now=now, target="new@clinic.example"
        )
        audit.record(team["id"], "member.left", actor=None, actor_name="Hanne", now=now)
        db.session.commit()
    login(team["owner"])
    page = client.get("/settings/teams/audit").text
    assert '<option value="invitation.sent">invited …</option>' in page
    assert "changed the role of … from … to …</option>" in page
    assert "%(" not in page  # no action reads with a raw placeholder
    assert "<option>Olga Owner</option>" in page
    everything = rows_of(client.get("/settings/teams/activity.csv"))
    assert everything[0] == ["time", "who", "action", "description", "target"]
    since = (now - timedelta(days=1)).date().isoformat()
    rows = rows_of(
        client.get(
            "/settings/teams/activity.csv",
            query_string={"person": "Olga Owner", "action": "invitation.sent", "from": since},
        )
    )
    assert [row[4] for row in rows[1:]] == ["new@clinic.example"]
    assert rows[1][3] == "invited new@clinic.example"
    bad = client.get(
        "/settings/teams/activity.csv", query_string={"from": "yesterday", "action": "x"}
    )
    assert len(rows_of(bad)) >= len(everything)  # unknown filters are no filter, never a 500


def test_the_same_filters_narrow_the_activity_list_on_the_page(client, app, team, login):
    now = utcnow()
    with app.app_context():
        olga = db.session.get(User, team["owner"])
        for days, address in ((10, "old@clinic.example"), (0, "new@clinic.example")):
            audit.record(
                team["id"],
                "invitation.sent",
                actor=olga,
                now=now - timedelta(days=days),
                target=address,
            )
        audit.record(team["id"], "member.left", actor=None, actor_name="Hanne", now=now)
        for n in range(12):
            audit.record(team["id"], "team.renamed", actor=olga, now=now, target=f"Navn {n}")
        db.session.commit()
    login(team["owner"])
    since = (now - timedelta(days=1)).date().isoformat()
    filters = {"person": "Olga Owner", "action": "invitation.sent", "from": since}
    page = " ".join(client.get("/settings/teams/audit", query_string=filters).text.split())
    log = page.split('<ol class="audit"', 1)[1].split("</ol>", 1)[0]
    assert "invited new@clinic.example" in log
    assert "old@clinic.example" not in log and "left the team" not in log and "Navn" not in log
    assert '<option value="invitation.sent" selected>' in page
    assert "<option selected>Olga Owner</option>" in page and f'value="{since}"' in page
    assert 'href="/settings/teams/audit"' in page  # back to everything
    nothing = client.get("/settings/teams/audit", query_string={"person": "Nobody"}).text
    assert "No entries match these filters." in nothing
    # Paging keeps the filters: 12 renames by Olga, 10 a page.
    renames = client.get("/settings/teams/audit", query_string={"action": "team.renamed"}).text
    assert "page=2" in renames and "action=team.renamed" in renames.split('id="audit-more"')[1]
    bad = client.get("/settings/teams/audit", query_string={"from": "yesterday", "action": "x"})
    assert bad.status_code == 200 and "Showing the entries that match" not in bad.text  # none


def test_only_admins_export(client, app, team, make_user):
    member = make_user(email="m@clinic.example")
    with app.app_context():
        db.session.add(Membership(team_id=team["id"], user_id=member, role="member"))
        db.session.commit()
    assert client.get("/settings/teams/members.csv").status_code == 302  # to the login page
    client.post("/login", data={"email": "m@clinic.example", "password": PASSWORD})
    assert client.get("/settings/teams/members.csv").status_code == 403
    assert client.get("/settings/teams/activity.csv").status_code == 403
    assert "members.csv" not in client.get("/settings/teams").text


def test_safe_cells():
    assert [safe_cell(v) for v in ("=1+1", "+45 1234", "-x", "@a", "Anna", None)] == [
        "'=1+1",
        "'+45 1234",
        "'-x",
        "'@a",
        "Anna",
        "",
    ]


@pytest.mark.parametrize("query", ["to=9999-12-31", "from=0001-01-01", "from=1-01-01"])
@pytest.mark.parametrize("path", ["/settings/teams/audit", "/settings/teams/activity.csv"])
def test_dates_at_the_ends_of_the_calendar_are_no_bound_not_a_500(client, team, login, path, query):
    login(team["owner"])
    assert client.get(f"{path}?{query}").status_code == 200
