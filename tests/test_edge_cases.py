"""Edge cases found in review: each test names the failure it prevents."""

import re
import time

from portal.audit.models import AuditEvent
from portal.auth.models import User
from portal.extensions import db
from portal.invitations.models import Invitation
from portal.teams.models import Membership, Team
from tests.conftest import PASSWORD, work_off_outbox
from tests.test_team_billing import Clinic


def test_a_team_created_after_a_deletion_gets_a_fresh_id_and_an_empty_log(
    client, app, make_user, make_team, login
):
    owner = make_user()
    first = make_team(owner, name="First")
    login(owner)
    client.post("/settings/teams/delete", data={"confirm": "First"})
    response = client.post("/settings/teams", data={"name": "Second"})
    assert response.status_code == 303  # not a 500 from a reused id's outbox key
    with app.app_context():
        second = db.session.query(Team).one().id
        assert second != first
        assert [e.action for e in db.session.query(AuditEvent).filter_by(team_id=second)] == [
            "team.created"
        ]


def test_nobody_joins_an_ended_team_and_assistants_need_practice(
    app, client, make_user, make_team, stripe_api, deliver_events
):
    clinic = Clinic(app, client, make_user, make_team, stripe_api, plan="practice")
    owner = clinic.as_user(clinic.owner)
    owner.post(
        "/settings/teams/invitations", data={"emails": "helper@clinic.example", "role": "assistant"}
    )
    refused = owner.post("/settings/teams/billing/plan", data={"plan": "pro", "interval": "month"})
    assert refused.status_code == 409 and "revoke pending assistant invitations" in refused.text
    owner.post(
        "/settings/teams/invitations", data={"emails": "late@clinic.example", "role": "member"}
    )
    clinic.stripe.post(
        f"/_config/subscriptions/{clinic.subscription_id}",
        {"status": "canceled", "event": "customer.subscription.deleted"},
    )
    deliver_events()
    late = clinic.as_user(make_user(email="late@clinic.example"))
    response = late.post(clinic.link("late@clinic.example") + "/accept")
    assert response.status_code == 409 and "cannot take new members right now" in response.text
    with app.app_context():
        assert (
            db.session.query(Invitation).filter_by(email="late@clinic.example").one().status
            == "pending"
        )
        assert db.session.query(Membership).count() == 1


def test_members_cannot_use_up_the_admins_invitation_budget(app, make_user, make_team):
    owner, member = make_user(), make_user()
    make_team(owner, members=[(member, "member")])
    member_client = app.test_client()
    member_client.post("/login", data={"email": "user2@clinic.example", "password": PASSWORD})
    many = " ".join(f"x{n}@clinic.example" for n in range(200))
    assert (
        member_client.post(
            "/settings/teams/invitations", data={"emails": many, "role": "member"}
        ).status_code
        == 403
    )
    owner_client = app.test_client()
    owner_client.post("/login", data={"email": "user1@clinic.example", "password": PASSWORD})
    response = owner_client.post(
        "/settings/teams/invitations", data={"emails": "ok@clinic.example", "role": "member"}
    )
    assert response.status_code == 303


def test_an_unconfirmed_account_is_confirmed_by_logging_in_from_its_invitation(
    client, app, make_user, make_team, outbox
):
    owner = make_user(email="owner@clinic.example")
    make_team(owner)
    make_user(email="slow@clinic.example", verified=False)
    client.post("/login", data={"email": "owner@clinic.example", "password": PASSWORD})
    client.post(
        "/settings/teams/invitations", data={"emails": "slow@clinic.example", "role": "member"}
    )
    client.post("/logout")
    link = re.search(
        r"http://localhost(/invitations/\S+)", outbox("slow@clinic.example")[-1]["text"]
    )[1]
    elsewhere = client.post("/login", data={"email": "slow@clinic.example", "password": PASSWORD})
    assert elsewhere.status_code == 403  # a plain login still needs the confirmation email
    response = client.post(
        "/login", data={"email": "slow@clinic.example", "password": PASSWORD, "next": link}
    )
    assert response.status_code == 303 and response.headers["Location"] == link
    assert client.post(link + "/accept").status_code == 303


def test_after_a_role_change_the_summary_still_counts_everyone(
    client, app, make_user, make_team, login
):
    owner, member = make_user(), make_user()
    make_team(owner, plan="practice", members=[(member, "member"), (make_user(), "member")])
    login(owner)
    with app.app_context():
        mid = db.session.query(Membership).filter_by(user_id=member).one().id
    response = client.post(
        f"/settings/teams/members/{mid}/role",
        data={"role": "assistant"},
        headers={"HX-Request": "true"},
    )
    summary = " ".join(
        re.search(r'id="seat-summary"[^>]*>(.*?)</p>', response.text, re.S)[1].split()
    )
    assert summary.startswith("3 members · 2 paid seats")


def test_a_vat_number_stripe_refuses_is_shown_on_the_billing_page_and_nothing_changes(
    app, client, make_user, make_team, stripe_api
):
    clinic = Clinic(app, client, make_user, make_team, stripe_api)
    owner = clinic.as_user(clinic.owner)
    owner.post(
        "/settings/teams/billing/details",
        data={"name": "Klinik", "vat": "DK12345678", "email": "b@clinic.example", "country": "DK"},
    )
    work_off_outbox(app)
    # The format is right, so the form takes it; Stripe refuses the number itself.
    response = owner.post(
        "/settings/teams/billing/details",
        data={"name": "Other name", "vat": "DE12", "email": "b@clinic.example", "country": "DK"},
    )
    assert response.status_code == 303
    work_off_outbox(app)
    page = " ".join(owner.get("/settings/teams/billing").text.split())
    assert "Stripe did not accept the invoice details saved on" in page
    assert "Check the VAT number and save again." in page
    with app.app_context():
        customer_id = db.session.get(Team, clinic.team).subscription.stripe_customer_id
    customer = stripe_api.get(f"/v1/customers/{customer_id}")
    assert customer["name"] == "Klinik"
    assert [t["value"] for t in stripe_api.get(f"/v1/customers/{customer_id}/tax_ids")["data"]] == [
        "DK12345678"
    ]


def test_an_idle_session_sends_htmx_to_the_login_page(client, make_user, login):
    login(make_user())
    with client.session_transaction() as session:
        session["seen_at"] = time.time() - 3 * 3600
    response = client.get("/settings/teams", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["HX-Redirect"].startswith("/login?next=/settings/teams")


def test_a_members_account_page_says_the_plan_comes_from_the_team(
    app, client, make_user, make_team, login
):
    owner, member = make_user(), make_user()
    make_team(owner, plan="pro", members=[(member, "member")])
    login(member)
    page = client.get("/settings/account").text
    assert "You have Pro through Nørrebro Klinik, which pays for your seat." in page
    assert "Renews on" not in page and "Manage billing" not in page
    with app.app_context():
        assert db.session.get(User, member).stripe_customer_id is None
