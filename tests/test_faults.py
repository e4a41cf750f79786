"""A bad day: Stripe paused (SIGSTOP) and an SMTP server that accepts and never answers.

No page waits on either: every team action, sign-up, forgot-password, the team page, the billing
page and its changes (plan preview, plan switch, invoice details) answer in under 2 s. Once
both are back, the worker delivers every email once and Stripe's seats match the team. If a
request ever carried out outbox rows again, these would hang.

Pages may make one quick Stripe read (a price preview) and fall back to their own estimate; its
timeout here is a quarter of the budget, so a slow CI machine still has room, while a page that
made a full Stripe call (3 s read timeout in tests) would be over it.
"""

import re
import signal
import time

import pytest

from portal.auth.models import User
from portal.extensions import db, mail
from portal.invitations.models import Invitation
from portal.teams.models import Membership, Team
from tests.conftest import LOCAL_STRIPE, PASSWORD, SMTPSink, free_port, work_off_outbox
from tests.test_worker import Blackhole

HOLE = Blackhole()
BUDGET = 2.0


@pytest.fixture
def app_overrides():
    return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": HOLE.port, "STRIPE_PREVIEW_TIMEOUT": 0.5}


def as_user(app, email):
    client = app.test_client()
    assert client.post("/login", data={"email": email, "password": PASSWORD}).status_code == 303
    return client


def timed(call, *args, **kwargs):
    started = time.perf_counter()
    response = call(*args, **kwargs)
    return response, time.perf_counter() - started


def test_no_page_waits_on_stripe_or_smtp_and_nothing_is_lost_or_doubled(
    app, make_user, make_team, stripe_api
):
    owner = make_user(email="olga@clinic.example")
    ids = {name: make_user(email=f"{name}@clinic.example") for name in ("mads", "mette", "leo")}
    make_user(email="jens@clinic.example")
    team_id = make_team(owner, members=[(ids[n], "member") for n in ids])
    work_off_outbox(app)  # the team's own set-up, before the bad day starts
    with app.app_context():
        membership = {
            n: db.session.query(Membership).filter_by(user_id=ids[n]).one().id for n in ids
        }
    admin, leaver, anonymous = (
        as_user(app, "olga@clinic.example"),
        as_user(app, "leo@clinic.example"),
        app.test_client(),
    )
    invitee = as_user(app, "jens@clinic.example")

    timings = {}
    stripe = LOCAL_STRIPE["process"]
    stripe.send_signal(signal.SIGSTOP)
    try:
        r, timings["team page"] = timed(admin.get, "/settings/teams")
        assert r.status_code == 200
        data = {"emails": "jens@clinic.example other@clinic.example", "role": "member"}
        r, timings["invite"] = timed(admin.post, "/settings/teams/invitations", data=data)
        assert r.status_code == 303
        with app.app_context():
            other = db.session.query(Invitation).filter_by(email="other@clinic.example").one()
            other.sent_at = other.sent_at.replace(year=other.sent_at.year - 1)  # past the grace
            db.session.commit()
            other_id = other.id
        r, timings["resend"] = timed(
            admin.post, "/settings/teams/invitations/resend", data={"invitation": other_id}
        )
        assert r.status_code == 303
        r, timings["revoke"] = timed(
            admin.post, "/settings/teams/invitations/revoke", data={"invitation": other_id}
        )
        assert r.status_code == 303
        r, timings["remove"] = timed(
            admin.post, f"/settings/teams/members/{membership['mads']}/remove"
        )
        assert r.status_code == 303
        r, timings["role change"] = timed(
            admin.post,
            f"/settings/teams/members/{membership['mette']}/role",
            data={"role": "admin"},
        )
        assert r.status_code == 303
        with app.app_context():
            from portal.outbox.models import OutboxMessage

            text = [
                m.payload["text"]
                for m in db.session.query(OutboxMessage).filter_by(kind="email")
                if m.payload["to"] == "jens@clinic.example"
            ][-1]
        link = re.search(r"http://localhost(/invitations/\S+)", text).group(1)
        r, timings["accept"] = timed(invitee.post, link + "/accept")
        assert r.status_code == 303
        r, timings["leave"] = timed(leaver.post, "/settings/teams/leave")
        assert r.status_code == 303
        r, timings["forgot password"] = timed(
            anonymous.post, "/password/forgot", data={"email": "olga@clinic.example"}
        )
        assert r.status_code == 200
        signup = {
            "name": "Nina",
            "email": "nina@clinic.example",
            "password": "a sunny day in aarhus",
        }
        r, timings["sign-up"] = timed(anonymous.post, "/signup", data=signup)
        assert r.status_code == 200
        r, timings["billing page"] = timed(admin.get, "/settings/teams/billing")
        assert r.status_code == 200 and "unavailable right now" in r.text
        plan = {"plan": "pro", "interval": "year"}
        r, timings["plan preview"] = timed(admin.post, "/settings/teams/billing/plan", data=plan)
        assert r.status_code == 200 and "(estimate)" in r.text
        r, timings["plan change"] = timed(
            admin.post, "/settings/teams/billing/plan", data={**plan, "confirm": "yes"}
        )
        assert r.status_code == 303
        details = {"name": "Klinik ApS", "email": "bill@clinic.example", "country": "DK"}
        r, timings["invoice details"] = timed(
            admin.post, "/settings/teams/billing/details", data=details
        )
        assert r.status_code == 303
    finally:
        stripe.send_signal(signal.SIGCONT)
    slow = {name: round(seconds, 2) for name, seconds in timings.items() if seconds >= BUDGET}
    assert slow == {}, slow

    # Both come back: the worker carries everything out once.
    sink = SMTPSink(free_port()).start()
    try:
        app.config.update(MAIL_PORT=sink.port)
        mail.init_app(app)
        work_off_outbox(app)
        received = sorted(m["To"] for m in sink.messages)
        work_off_outbox(app)
        assert sorted(m["To"] for m in sink.messages) == received  # nothing twice
    finally:
        sink.stop()
    # Jens accepted (his link came from the queued email) and Other's invitation was revoked
    # before the worker ran: both invitation emails are dropped, as no longer wanted.
    assert received == sorted(
        ["mads@clinic.example", "nina@clinic.example", "olga@clinic.example", "olga@clinic.example"]
    )  # "you were removed"; the verification; the reset link and "Jens accepted"
    with app.app_context():
        team = db.session.get(Team, team_id)
        paid = db.session.query(Membership).filter_by(team_id=team_id).count()
        remote = stripe_api.get(f"/v1/subscriptions/{team.subscription.stripe_subscription_id}")
        assert db.session.query(User).filter_by(email="nina@clinic.example").count() == 1
    assert remote["items"]["data"][0]["quantity"] == paid == 3  # olga, mette, jens
    assert remote["items"]["data"][0]["price"]["lookup_key"] == "pro_year"
    customer = stripe_api.get(f"/v1/customers/{team.subscription.stripe_customer_id}")
    assert customer["name"] == "Klinik ApS"
