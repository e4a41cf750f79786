"""Races on PostgreSQL: two threads, two connections, started together by a barrier."""

import re
import threading

import pytest

from portal.audit.models import AuditEvent
from portal.auth.models import User
from portal.billing import seats
from portal.clock import utcnow
from portal.exceptions import NotFoundError
from portal.extensions import db
from portal.invitations import service as invitations
from portal.invitations.models import Invitation
from portal.outbox.models import OutboxMessage
from portal.teams import service as teams
from portal.teams.models import Membership
from portal.teams.queries import membership_of
from tests.conftest import PASSWORD

pytestmark = pytest.mark.postgres


def race(app, *actions):
    """Run each action in its own thread and database connection, as close together as we can."""
    barrier = threading.Barrier(len(actions))
    results = [None] * len(actions)

    def run(index, action):
        with app.test_request_context():
            barrier.wait()
            try:
                results[index] = action()
                db.session.commit()
            except Exception as error:  # noqa: BLE001 - the loser's error is the result
                db.session.rollback()
                results[index] = error
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def invite(app, owner_id, email, role="member"):
    with app.test_request_context():
        me = membership_of(db.session.get(User, owner_id))
        invitations.invite_members(me, [invitations.Entry(email)], role, now=utcnow())
        db.session.commit()
        return db.session.query(Invitation).filter_by(team_id=me.team_id, email=email).one().id


def accept(invitation_id, user_id):
    def action():
        invitation = db.session.get(Invitation, invitation_id)
        return invitations.accept_invitation(
            invitation, db.session.get(User, user_id), now=utcnow()
        )

    return action


@pytest.fixture
def seat_calls(monkeypatch):
    calls, lock, real = [], threading.Lock(), seats.seats_changed

    def record(team, *, now):
        with lock:
            calls.append(team.id)
        real(team, now=now)

    monkeypatch.setattr(seats, "seats_changed", record)
    return calls


def test_accepting_two_teams_at_once_gives_exactly_one_membership(app, make_user, make_team):
    a, b = make_user(), make_user()
    make_team(a, name="A")
    make_team(b, name="B")
    joiner = make_user(email="joiner@clinic.example")
    first, second = invite(app, a, "joiner@clinic.example"), invite(app, b, "joiner@clinic.example")
    results = race(app, accept(first, joiner), accept(second, joiner))
    assert sum(isinstance(r, invitations.AlreadyInTeamError) for r in results) == 1
    with app.app_context():
        assert db.session.query(Membership).filter_by(user_id=joiner).count() == 1
        statuses = sorted(i.status for i in db.session.query(Invitation))
        assert statuses == ["accepted", "pending"]


def test_a_double_submitted_accept_joins_once(app, make_user, make_team, seat_calls):
    owner = make_user(email="owner@clinic.example")
    make_team(owner)
    joiner = make_user(email="joiner@clinic.example")
    invitation = invite(app, owner, "joiner@clinic.example")
    seat_calls.clear()
    results = race(app, accept(invitation, joiner), accept(invitation, joiner))
    assert sum(isinstance(r, Membership) for r in results) == 1
    with app.app_context():
        assert db.session.query(Membership).filter_by(user_id=joiner).count() == 1
        assert db.session.query(AuditEvent).filter_by(action="invitation.accepted").count() == 1
        notices = db.session.query(OutboxMessage).filter(
            OutboxMessage.idempotency_key.like("accepted:%")
        )
        assert notices.count() == 1
    assert len(seat_calls) == 1


def _membership(app, user_id):
    with app.app_context():
        return db.session.query(Membership).filter_by(user_id=user_id).one().id


def test_two_admins_removing_the_same_member_remove_once(app, make_user, make_team, seat_calls):
    owner, admin, member = make_user(), make_user(), make_user()
    team = make_team(owner, members=[(admin, "admin"), (member, "member")])
    target = _membership(app, member)
    seat_calls.clear()

    def remove_by(actor):
        return lambda: teams.remove_member(
            membership_of(db.session.get(User, actor)), target, now=utcnow()
        )

    results = race(app, remove_by(owner), remove_by(admin))
    assert sum(isinstance(r, NotFoundError) for r in results) == 1
    with app.app_context():
        assert db.session.query(Membership).filter_by(team_id=team).count() == 2
        assert db.session.query(AuditEvent).filter_by(action="member.removed").count() == 1
    assert len(seat_calls) == 1


def test_two_admins_changing_a_role_at_once_change_it_once(app, make_user, make_team, seat_calls):
    owner, admin, member = make_user(), make_user(), make_user()
    make_team(owner, plan="practice", members=[(admin, "admin"), (member, "member")])
    target = _membership(app, member)
    seat_calls.clear()

    def to_assistant(actor):
        return lambda: teams.change_role(
            membership_of(db.session.get(User, actor)), target, "assistant", now=utcnow()
        )

    race(app, to_assistant(owner), to_assistant(admin))
    with app.app_context():
        assert db.session.get(Membership, target).role == "assistant"
        assert db.session.query(AuditEvent).filter_by(action="member.role").count() == 1
    assert len(seat_calls) == 1


def test_the_same_webhook_event_delivered_twice_at_once_is_applied_once(app, stripe_api, make_user):
    """Two deliveries of one event race; the event-id insert lets exactly one apply it."""
    from devtools.provision import provision_subscription
    from portal.billing.models import StripeEvent, Subscription
    from tests.conftest import post_event

    user_id = make_user()
    with app.test_request_context():
        row = provision_subscription(db.session.get(User, user_id), plan="pro", interval="month")
        db.session.commit()
        remote_id = row.stripe_subscription_id
        db.session.delete(row)
        db.session.commit()
    event = {
        "id": "evt_twice",
        "type": "customer.subscription.updated",
        "data": {"object": {"id": remote_id, "object": "subscription"}},
    }
    barrier = threading.Barrier(2)
    responses = []

    def deliver():
        client = app.test_client()
        barrier.wait()
        responses.append(post_event(client, event))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r.status_code for r in responses) == [200, 200]
    assert sorted(r.json["status"] for r in responses) == ["duplicate", "ok"]
    with app.app_context():
        assert db.session.query(StripeEvent).count() == 1
        assert db.session.query(Subscription).count() == 1


def parallel_posts(clients, path, data):
    """POST from each client at the same moment; return the status codes."""
    barrier = threading.Barrier(len(clients))
    statuses = [None] * len(clients)

    def run(index, client):
        barrier.wait()
        statuses[index] = client.post(path, data=data).status_code

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return statuses


def test_ten_parallel_identical_invites_give_one_invitation_and_no_500(
    app, make_user, make_team, outbox
):
    owner = make_user(email="olga@clinic.example")
    make_team(owner)
    clients = []
    for _ in range(10):
        client = app.test_client()
        client.post("/login", data={"email": "olga@clinic.example", "password": PASSWORD})
        clients.append(client)
    data = {"emails": "same@clinic.example", "role": "member"}
    statuses = parallel_posts(clients, "/settings/teams/invitations", data)
    assert all(status == 303 for status in statuses), statuses
    with app.app_context():
        assert db.session.query(Invitation).filter_by(email="same@clinic.example").count() == 1
    assert len(outbox("same@clinic.example")) == 1


def test_twenty_parallel_sign_ups_through_one_link_give_one_account_and_no_500(
    app, client, make_user, make_team, outbox
):
    owner = make_user(email="olga@clinic.example")
    make_team(owner)
    client.post("/login", data={"email": "olga@clinic.example", "password": PASSWORD})
    client.post("/settings/teams/invitations", data={"emails": "new@clinic.example"})
    [mail] = outbox("new@clinic.example")
    link = re.search(r"http://localhost(/invitations/\S+)", mail["text"]).group(1)
    clients = [app.test_client() for _ in range(20)]
    data = {"name": "Nina", "password": "a sunny day in aarhus"}
    statuses = parallel_posts(clients, link + "/signup", data)
    # 303: joined, or "an account exists" back on the invitation; 429 past its sign-up limit.
    assert all(status in (303, 409, 410, 429) for status in statuses), statuses
    assert statuses.count(303) >= 1
    with app.app_context():
        assert db.session.query(User).filter_by(email="new@clinic.example").count() == 1
        [user] = db.session.query(User).filter_by(email="new@clinic.example").all()
        assert db.session.query(Membership).filter_by(user_id=user.id).count() == 1
