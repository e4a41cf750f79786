"""The team page runs the same few SQL statements whatever the team's size."""

import pytest
from sqlalchemy import event

from portal.auth.models import User
from portal.clock import utcnow
from portal.extensions import db
from portal.invitations.models import Invitation
from portal.teams.models import Membership


def add_members(app, team_id, count):
    now = utcnow()
    with app.app_context():
        users = [
            User(
                email=f"m{team_id}-{n}@clinic.example",
                name=f"Member {n}",
                password_hash="x",
                created_at=now,
            )
            for n in range(count)
        ]
        db.session.add_all(users)
        db.session.flush()
        db.session.add_all(
            Membership(team_id=team_id, user_id=u.id, role="member", created_at=now) for u in users
        )
        db.session.add_all(
            Invitation(
                team_id=team_id,
                email=f"p{team_id}-{n}@clinic.example",
                role="member",
                token_hash=f"{team_id}-{n:060d}",
                expires_at=now,
                invited_by_id=users[0].id,
            )
            for n in range(count)
        )
        db.session.commit()


def statements_for(app, client, path, headers=None):
    seen = []
    with app.app_context():
        engine = db.engine

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        response = client.get(path, headers=headers or {})
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 200
    return seen


@pytest.mark.parametrize(
    "path",
    [
        "/settings/teams",
        # A later page of a search with a role filter, and a later page of invitations.
        "/settings/teams?q=member+1&role=member&page=2&invitations_page=2",
        "/settings/teams/members?q=member+1&role=member&page=2",
        # Sorted pages, the whole list and a search (issue 14's sortable columns).
        "/settings/teams?sort=-joined&page=2",
        "/settings/teams/members?q=member+1&sort=role&page=2",
    ],
)
@pytest.mark.parametrize("role", ["admin", "member"])
def test_team_page_statements_do_not_grow_with_the_team(
    app, client, make_user, make_team, login, role, path
):
    counts = {}
    for size in (5, 500):
        owner = make_user(email=f"owner{size}@clinic.example")
        team = make_team(owner, name=f"Team {size}")
        add_members(app, team, size)
        viewer = owner if role == "admin" else make_user(email=f"viewer{size}@clinic.example")
        if role == "member":
            with app.app_context():
                db.session.add(Membership(team_id=team, user_id=viewer, role="member"))
                db.session.commit()
        login(viewer)
        headers = {"HX-Request": "true"} if "/members" in path else {}
        counts[size] = len(statements_for(app, client, path, headers))
        client.post("/logout")
        with app.app_context():
            db.session.query(Invitation).delete()
            db.session.query(Membership).delete()
            db.session.commit()
    # Admins also see whether ownership is offered to someone: one statement more, still
    # within the bound of 6.
    assert counts[5] == counts[500] <= (5 if role == "admin" else 4), counts
