"""Team billing against the local Stripe server over HTTP: seats, joiners, the billing page."""

import os
import re
import signal
import time

import pytest

from portal.audit.models import AuditEvent
from portal.auth.models import User
from portal.billing import seats
from portal.billing.models import Subscription
from portal.billing.service import period_total, seat_price
from portal.billing.stripe_gateway import PaymentDeclinedError, StripeGateway
from portal.clock import utcnow
from portal.extensions import db
from portal.i18n import money
from portal.outbox.models import OutboxMessage
from portal.teams.models import Membership, Team
from tests.conftest import LOCAL_STRIPE, PASSWORD, work_off_outbox

HX = {"HX-Request": "true"}


def money_text(app, minor_units: int) -> str:
    """An amount as an English page shows it, with its spaces made plain (as the tests read)."""
    with app.test_request_context():
        return " ".join(money(minor_units).split())


class Clinic:
    """A team whose owner pays; helpers to invite and accept over HTTP like real people."""

    def __init__(
        self,
        app,
        client,
        make_user,
        make_team,
        stripe_api,
        plan="practice",
        interval="month",
    ):
        self.app, self.client, self.make_user, self.stripe = app, client, make_user, stripe_api

        self.owner = make_user(email="owner@clinic.example", name="Olga Owner")
        self.team = make_team(self.owner, plan=plan, interval=interval)
        with app.app_context():
            self.subscription_id = db.session.get(
                Team, self.team
            ).subscription.stripe_subscription_id

    def as_user(self, user_id):
        client = self.app.test_client()
        with self.app.app_context():
            email = db.session.get(User, user_id).email
        assert client.post("/login", data={"email": email, "password": PASSWORD}).status_code == 303
        return client

    def invite_and_accept(self, email, role="member", user_id=None):
        owner = self.as_user(self.owner)
        owner.post("/settings/teams/invitations", data={"emails": email, "role": role})
        user_id = user_id or self.make_user(email=email)
        joiner = self.as_user(user_id)
        link = self.link(email)
        assert joiner.post(link + "/accept").status_code == 303
        work_off_outbox(self.app)  # the worker's part: seats, the joiner's own plan, emails
        return user_id

    def link(self, email):
        with self.app.app_context():
            rows = (
                db.session.query(OutboxMessage).filter_by(kind="email").order_by(OutboxMessage.id)
            )
            texts = [r.payload["text"] for r in rows if r.payload["to"] == email]
        return re.search(r"http://localhost(/invitations/\S+)", texts[-1]).group(1)

    def stripe_quantity(self):
        work_off_outbox(self.app)  # what the worker does right after each change
        return self.stripe.get(f"/v1/subscriptions/{self.subscription_id}")["items"]["data"][0][
            "quantity"
        ]

    def local_quantity(self):
        work_off_outbox(self.app)
        with self.app.app_context():
            return db.session.get(Team, self.team).subscription.quantity

    def renew_with_card(self, number):
        """Make `number` the team's card, then have Stripe invoice the next period now."""
        with self.app.app_context():
            customer = db.session.get(Team, self.team).subscription.stripe_customer_id
        card = self.stripe.post(
            "/v1/payment_methods",
            {
                "type": "card",
                "card[number]": number,
                "card[exp_month]": "12",
                "card[exp_year]": "2034",
                "card[cvc]": "123",
            },
        )
        self.stripe.post(f"/v1/payment_methods/{card['id']}/attach", {"customer": customer})
        self.stripe.post(
            f"/v1/customers/{customer}", {"invoice_settings[default_payment_method]": card["id"]}
        )
        self.stripe.post(f"/_config/subscriptions/{self.subscription_id}/renew")

    def membership(self, user_id):
        with self.app.app_context():
            return db.session.query(Membership).filter_by(user_id=user_id).one().id


@pytest.fixture
def clinic(app, client, make_user, make_team, stripe_api):
    return Clinic(app, client, make_user, make_team, stripe_api)


def test_seats_follow_membership_and_assistants_are_free(clinic, monkeypatch):
    calls = []
    with clinic.app.app_context():
        stripe = seats.gateway()
    original = stripe.set_subscription_item

    def record(remote, **kwargs):
        calls.append((kwargs["quantity"], kwargs["proration_behavior"], kwargs["idempotency_key"]))
        return original(remote, **kwargs)

    monkeypatch.setattr(stripe, "set_subscription_item", record)
    assert clinic.stripe_quantity() == 1
    member = clinic.invite_and_accept("member@clinic.example")
    assert clinic.stripe_quantity() == clinic.local_quantity() == 2
    assistant = clinic.invite_and_accept("assistant@clinic.example", role="assistant")
    assert clinic.stripe_quantity() == 2
    owner = clinic.as_user(clinic.owner)
    owner.post(
        f"/settings/teams/members/{clinic.membership(assistant)}/role", data={"role": "member"}
    )
    assert clinic.stripe_quantity() == clinic.local_quantity() == 3
    owner.post(f"/settings/teams/members/{clinic.membership(member)}/remove")
    assert clinic.stripe_quantity() == clinic.local_quantity() == 2
    assert [(q, p) for q, p, _ in calls] == [
        (2, "create_prorations"),
        (3, "create_prorations"),
        (2, "create_prorations"),
    ]
    assert all(re.fullmatch(rf"seats:{clinic.team}:\d+", key) for *_, key in calls)
    assert len({key for *_, key in calls}) == 3
    # The team page says it too.
    assert "2 paid seats" in " ".join(owner.get("/settings/teams").text.split())


def test_proration_policy():
    monthly, annual = Subscription(interval="month"), Subscription(interval="year")
    assert seats.proration_for(monthly, current=2, target=3) == "create_prorations"
    assert seats.proration_for(annual, current=2, target=3) == "always_invoice"
    assert seats.proration_for(annual, current=3, target=2) == "create_prorations"


def test_a_pro_joiner_is_told_the_refund_then_their_plan_is_cancelled_and_refunded(
    app, clinic, make_user, outbox
):
    from devtools.provision import provision_subscription

    pro = make_user(email="pro@clinic.example", name="Peter Pro")
    with app.test_request_context():
        own = provision_subscription(db.session.get(User, pro), plan="pro", interval="month")
        db.session.commit()
        own_id = own.stripe_subscription_id
    owner = clinic.as_user(clinic.owner)
    owner.post(
        "/settings/teams/invitations", data={"emails": "pro@clinic.example", "role": "member"}
    )
    joiner = clinic.as_user(pro)
    link = clinic.link("pro@clinic.example")
    page = joiner.get(link).text
    assert "Your own Pro subscription is cancelled when you accept" in page
    refund_shown = re.search(r"Now: (.*?) back to your card", page).group(1)
    assert "Each month: you stop paying" in page
    assert joiner.post(link + "/accept").status_code == 303
    work_off_outbox(app)
    assert clinic.stripe.get(f"/v1/subscriptions/{own_id}")["status"] == "canceled"
    refunds = clinic.stripe.list("refunds")
    assert len(refunds) == 1 and 0 < refunds[0]["amount"] <= 29900
    assert refund_shown.replace("\xa0", " ").startswith("DKK") or "kr" in refund_shown
    [mail] = [m for m in outbox("pro@clinic.example") if "cancelled" in m["subject"]]
    assert "refunded" in mail["text"]
    assert "Your plan: Practice" in joiner.get("/settings/account").text
    assert clinic.stripe_quantity() == 2


def test_a_free_joiner_gets_the_teams_plan_and_goes_back_to_free_on_leaving(clinic):
    member = clinic.invite_and_accept("free@clinic.example")
    client = clinic.as_user(member)
    account = client.get("/settings/account").text
    assert "Your plan: Practice" in account and "Upgrade" not in account
    client.post("/settings/teams/leave")
    assert "Your plan: Free" in client.get("/settings/account").text
    assert clinic.stripe_quantity() == 1


ROLES = {"owner": 200, "admin": 200, "member": 403, "no_team": 403, "anonymous": 302}


@pytest.fixture
def roles(clinic, make_user):
    admin = clinic.invite_and_accept("admin@clinic.example", role="admin")
    member = clinic.invite_and_accept("member@clinic.example")
    return {"owner": clinic.owner, "admin": admin, "member": member, "no_team": make_user()}


@pytest.mark.parametrize("actor", list(ROLES))
def test_who_sees_and_who_changes_billing(clinic, roles, app, actor):
    client = clinic.as_user(roles[actor]) if actor != "anonymous" else app.test_client()
    page = client.get("/settings/teams/billing")
    assert page.status_code == ROLES[actor]
    changes = {
        "/settings/teams/billing/plan": {"plan": "pro", "interval": "year"},
        "/settings/teams/billing/details": {
            "name": "X",
            "email": "x@clinic.example",
            "country": "DK",
        },
        "/billing/portal": {},
    }
    before = clinic.stripe.get(f"/v1/subscriptions/{clinic.subscription_id}")["items"]["data"][0][
        "price"
    ]
    for url, form in changes.items():
        if actor == "owner" and url.endswith("/plan"):
            continue  # changing the plan is tested below
        response = client.post(url, data=form)
        expected = {"owner": 303, "anonymous": 302}.get(actor, 403)
        assert response.status_code == expected, (url, response.status_code)
    after = clinic.stripe.get(f"/v1/subscriptions/{clinic.subscription_id}")["items"]["data"][0][
        "price"
    ]
    assert before["id"] == after["id"]
    if actor in ("owner", "admin"):
        assert "Billing for Nørrebro Klinik" in page.text
        assert ("Manage billing" in page.text) == (actor == "owner")
        assert ('action="/settings/teams/billing/plan"' in page.text) == (actor == "owner")
    team_page = client.get("/settings/teams").text if actor != "anonymous" else ""
    assert ('href="/settings/teams/billing"' in team_page) == (actor in ("owner", "admin"))


def test_billing_page_shows_seats_status_next_invoice_and_invoices(clinic):
    clinic.invite_and_accept("member@clinic.example")
    clinic.invite_and_accept("assistant@clinic.example", role="assistant")
    page = " ".join(clinic.as_user(clinic.owner).get("/settings/teams/billing").text.split())
    assert "Practice, billed monthly" in page
    assert "2 paid seats, 1 free assistant" in page
    assert "Active" in page
    with clinic.app.app_context():
        next_amount = period_total("practice", "month", 2) / 100
    assert f"{next_amount:,.2f}".replace(",", "\xa0").replace(".", ",") in page.replace(
        " ", "\xa0"
    ) or (f"{next_amount:.2f}" in page.replace(",", ""))
    assert 'id="invoices"' in page and "Paid" in page
    # The price table says whose prices it lists (a plan preview shows another plan's price).
    assert "Price per seat on Practice, billed monthly (clinic discount)" in page


def test_the_owner_switches_plan_and_cycle_but_not_to_pro_with_assistants(clinic):
    clinic.invite_and_accept("assistant@clinic.example", role="assistant")
    owner = clinic.as_user(clinic.owner)
    refused = owner.post("/settings/teams/billing/plan", data={"plan": "pro", "interval": "month"})
    assert refused.status_code == 409
    assert "Assistants exist only on Practice" in refused.text
    remote = clinic.stripe.get(f"/v1/subscriptions/{clinic.subscription_id}")
    assert remote["items"]["data"][0]["price"]["lookup_key"] == "practice_month"
    assert (
        owner.post(
            "/settings/teams/billing/plan",
            data={"plan": "practice", "interval": "year", "confirm": "yes"},
        ).status_code
        == 303
    )
    page = " ".join(owner.get("/settings/teams/billing").text.split())
    assert "Switching the team to Practice, billed annually – updating…" in page
    assert 'hx-get="/settings/teams/billing/pending?plan=1"' in page
    assert 'action="/settings/teams/billing/plan"' not in page  # no second change meanwhile
    polled = owner.get("/settings/teams/billing/pending?plan=1", headers=HX)
    assert "updating…" in polled.text and "HX-Refresh" not in polled.headers
    # No request waited on Stripe: the worker makes the change.
    remote = clinic.stripe.get(f"/v1/subscriptions/{clinic.subscription_id}")
    assert remote["items"]["data"][0]["price"]["lookup_key"] == "practice_month"
    work_off_outbox(clinic.app)
    remote = clinic.stripe.get(f"/v1/subscriptions/{clinic.subscription_id}")
    assert remote["items"]["data"][0]["price"]["lookup_key"] == "practice_year"
    assert remote["items"]["data"][0]["quantity"] == 1
    with clinic.app.app_context():
        assert db.session.get(Team, clinic.team).subscription.interval == "year"
        [event] = db.session.query(AuditEvent).filter_by(action="billing.plan_changed").all()
        assert (event.actor_id, event.target) == (clinic.owner, "Practice (year)")
    done = owner.get("/settings/teams/billing/pending?plan=1", headers=HX)
    assert done.headers["HX-Refresh"] == "true"
    page = " ".join(owner.get("/settings/teams/billing").text.split())
    assert "The team&#39;s plan is now Practice, billed annually." in page
    assert "Practice, billed annually" in page and "updating…" not in page


def test_a_plan_switch_is_previewed_with_stripes_prices_before_it_is_confirmed(clinic):
    clinic.invite_and_accept("member@clinic.example")
    owner = clinic.as_user(clinic.owner)
    preview = owner.post(
        "/settings/teams/billing/plan", data={"plan": "practice", "interval": "year"}
    )
    assert preview.status_code == 200
    page = " ".join(preview.text.split())
    assert "You are switching the team to Practice, billed annually." in page
    with clinic.app.app_context():
        per_seat = seat_price("practice", "year", 2)
        total = period_total("practice", "year", 2)
    assert f"{money_text(clinic.app, per_seat)} per year" in page
    assert (
        f"{money_text(clinic.app, total)} per year for 2 paid seats" in page
        and "(estimate)" not in page
    )
    assert 'name="confirm" value="yes"' in page and "Keep the current plan" in page
    # A new billing cycle starts at once: Stripe invoices the year now, less the unused month.
    due, credit = re.search(
        r"DKK ([\d,.]+) charged now: the new period, less DKK ([\d,.]+) for the unused part", page
    ).groups()
    assert float(credit.replace(",", "")) > 0
    assert (
        money_text(clinic.app, total)
        == f"DKK {float(due.replace(',', '')) + float(credit.replace(',', '')):,.2f}"
    )
    # Nothing changed, nothing queued.
    remote = clinic.stripe.get(f"/v1/subscriptions/{clinic.subscription_id}")
    assert remote["items"]["data"][0]["price"]["lookup_key"] == "practice_month"
    with clinic.app.app_context():
        assert not db.session.query(OutboxMessage).filter_by(kind="change_plan").count()
    same = owner.post(
        "/settings/teams/billing/plan", data={"plan": "practice", "interval": "month"}
    )
    assert same.status_code == 409 and "on this plan and billing cycle already" in same.text


def test_a_plan_switch_that_stripe_refuses_says_so_on_the_billing_page(clinic, monkeypatch):
    owner = clinic.as_user(clinic.owner)
    owner.post(
        "/settings/teams/billing/plan",
        data={"plan": "practice", "interval": "year", "confirm": "yes"},
    )

    def declined(*args, **kwargs):
        raise PaymentDeclinedError("Your card was declined.")

    monkeypatch.setattr(StripeGateway, "set_subscription_item", declined)
    work_off_outbox(clinic.app)
    with clinic.app.app_context():
        [row] = db.session.query(OutboxMessage).filter_by(kind="change_plan").all()
        assert row.status == "failed" and row.attempts == 1  # retrying cannot mend a decline
    page = " ".join(owner.get("/settings/teams/billing").text.split())
    assert "Stripe did not accept the switch to Practice" in page
    assert "nothing was changed" in page and "Practice, billed monthly" in page
    assert 'action="/settings/teams/billing/plan"' in page  # the owner can try again


def test_the_owner_edits_the_invoice_details_in_stripe(clinic):
    owner = clinic.as_user(clinic.owner)
    bad = owner.post(
        "/settings/teams/billing/details",
        data={
            "name": "Klinik ApS",
            "vat": "12345678",
            "email": "bill@clinic.example",
            "country": "DK",
        },
    )
    assert bad.status_code == 422 and "for example DK12345678" in bad.text
    ok = owner.post(
        "/settings/teams/billing/details",
        data={
            "name": "Klinik ApS",
            "vat": "dk 1234 5678",
            "email": "bill@clinic.example",
            "line1": "Nørrebrogade 1",
            "postal_code": "2200",
            "city": "København N",
            "country": "dk",
        },
    )
    assert ok.status_code == 303
    page = owner.get("/settings/teams/billing").text
    assert "Saving the invoice details in Stripe – updating…" in page
    assert 'value="Klinik ApS"' in page  # what was saved shows while it is on its way
    work_off_outbox(clinic.app)
    with clinic.app.app_context():
        customer_id = db.session.get(Team, clinic.team).subscription.stripe_customer_id
    customer = clinic.stripe.get(f"/v1/customers/{customer_id}")
    assert (customer["name"], customer["email"]) == ("Klinik ApS", "bill@clinic.example")
    assert customer["address"]["city"] == "København N"
    assert [
        t["value"] for t in clinic.stripe.get(f"/v1/customers/{customer_id}/tax_ids")["data"]
    ] == ["DK12345678"]
    page = owner.get("/settings/teams/billing").text
    assert 'value="Klinik ApS"' in page and 'value="DK12345678"' in page


def test_manage_billing_opens_the_portal_for_the_teams_customer(clinic):
    response = clinic.as_user(clinic.owner).post("/billing/portal")
    assert response.status_code == 303
    assert re.search(r"/portal/bps_\w+$", response.headers["Location"])


def test_remove_confirmation_previews_the_new_recurring_total(clinic):
    member = clinic.invite_and_accept("member@clinic.example")
    page = (
        clinic.as_user(clinic.owner)
        .get(f"/settings/teams/members/{clinic.membership(member)}/remove")
        .text
    )
    preview = " ".join(re.search(r'id="price-preview">(.*?)</p>', page, re.S).group(1).split())
    amounts = re.findall(r"\d[\d.,]*\d", preview)
    assert len(amounts) == 2 and "per month" in preview
    with clinic.app.app_context():
        expected_after = period_total("practice", "month", 1) // 100
    assert (
        str(expected_after)
        in amounts[1].replace(".", "").replace(",", "")[: len(str(expected_after))]
    )


def test_the_invite_form_states_the_price_from_the_one_tier_table(clinic):
    page = " ".join(clinic.as_user(clinic.owner).get("/settings/teams").text.split())
    with clinic.app.app_context():
        total = period_total("practice", "month", 2)
    assert "At 2 paid seats the team pays" in page
    assert f"{total // 100:,}".replace(",", ".") in page or f"{total // 100:,}" in page


# -- status from the subscription, through local Stripe and the webhook --
def set_state(clinic, deliver_events, **state):
    clinic.stripe.post(f"/_config/subscriptions/{clinic.subscription_id}", state)
    responses = deliver_events()
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]


def test_past_due_shows_a_banner_to_admins_and_emails_the_owner(clinic, deliver_events, outbox):
    member = clinic.invite_and_accept("member@clinic.example")
    clinic.renew_with_card("4000000000000341")
    deliver_events()
    owner_page = clinic.as_user(clinic.owner).get("/settings/teams").text
    assert "The team's last payment failed" in owner_page
    assert "last payment failed" not in clinic.as_user(member).get("/settings/teams").text
    [mail] = [m for m in outbox("owner@clinic.example") if "payment" in m["subject"].lower()]
    assert mail["subject"] == "Your payment for Practice failed"
    assert "Practice" in clinic.as_user(member).get("/settings/account").text  # full access


def test_a_card_that_needs_3d_secure_ends_in_action_required(clinic, deliver_events, outbox):
    clinic.renew_with_card("4000002500003155")
    deliver_events()
    page = clinic.as_user(clinic.owner).get("/settings/teams").text
    assert "confirm the team's last payment (3-D Secure)" in page
    assert any(
        m["subject"] == "Your bank asks you to confirm a payment"
        for m in outbox("owner@clinic.example")
    )


@pytest.mark.parametrize("status", ["canceled", "unpaid"])
def test_an_ended_subscription_makes_the_team_inactive(clinic, deliver_events, status):
    member = clinic.invite_and_accept("member@clinic.example")
    event = (
        "customer.subscription.deleted" if status == "canceled" else "customer.subscription.updated"
    )
    set_state(clinic, deliver_events, status=status, event=event)
    member_client = clinic.as_user(member)
    assert "Your plan: Free" in member_client.get("/settings/account").text
    assert "has ended: members have Free features" in member_client.get("/settings/teams").text
    owner = clinic.as_user(clinic.owner)
    billing_page = owner.get("/settings/teams/billing").text
    assert "Reactivate the team" in billing_page
    assert (
        owner.post(
            "/settings/teams/invitations", data={"emails": "x@clinic.example", "role": "member"}
        ).status_code
        == 403
    )


def test_the_owner_reactivates_an_ended_team(clinic, deliver_events):
    clinic.invite_and_accept("member@clinic.example")
    set_state(clinic, deliver_events, status="canceled", event="customer.subscription.deleted")
    owner = clinic.as_user(clinic.owner)
    checkout = owner.post("/billing/checkout", data={"plan": "practice", "interval": "month"})
    assert checkout.status_code == 303
    clinic.stripe.complete_checkout(checkout.headers["Location"])
    deliver_events()
    with clinic.app.app_context():
        subscription = db.session.get(Team, clinic.team).subscription
        assert subscription.status in ("active", "trialing") and subscription.quantity == 2
    assert "has ended" not in owner.get("/settings/teams").text


def test_trialing_shows_the_end_date_and_trial_will_end_emails_the_owner(
    app, client, make_user, make_team, stripe_api, deliver_events, outbox
):
    clinic = Clinic(app, client, make_user, make_team, stripe_api)
    in_ten_days = int(time.time()) + 10 * 86400
    set_state(clinic, deliver_events, status="trialing", trial_end=in_ten_days)
    page = clinic.as_user(clinic.owner).get("/settings/teams/billing").text
    assert "Free trial until" in page
    set_state(
        clinic, deliver_events, status="trialing", event="customer.subscription.trial_will_end"
    )
    [mail] = [m for m in outbox("owner@clinic.example") if "trial" in m["subject"].lower()]
    assert mail["subject"].startswith("Your Practice trial ends on")
    assert "1 seat" in mail["text"]


def test_out_of_order_events_end_in_stripes_current_state(clinic, client, deliver_events):
    clinic.invite_and_accept("member@clinic.example")
    deliver_events()
    events = [
        e
        for e in clinic.stripe.events(0)
        if e["data"]["object"].get("id") == clinic.subscription_id
    ]
    clinic.stripe.post(f"/_config/subscriptions/{clinic.subscription_id}", {"status": "past_due"})
    newest = [e for e in clinic.stripe.events(0) if e["type"] == "customer.subscription.updated"][
        -1
    ]
    from tests.conftest import post_event

    post_event(client, newest)
    for old in reversed(events):  # the older snapshots (status active) arrive late
        post_event(client, old)
    with clinic.app.app_context():
        assert db.session.get(Team, clinic.team).subscription.status == "past_due"


# -- faults --
def test_stripe_down_during_accept_then_back_changes_the_seats_exactly_once(clinic, app):
    process = LOCAL_STRIPE["process"]
    owner = clinic.as_user(clinic.owner)
    owner.post(
        "/settings/teams/invitations", data={"emails": "late@clinic.example", "role": "member"}
    )
    joiner_id = clinic.make_user(email="late@clinic.example")
    joiner = clinic.as_user(joiner_id)
    link = clinic.link("late@clinic.example")
    os.kill(process.pid, signal.SIGSTOP)
    try:
        response = joiner.post(link + "/accept")
        assert response.status_code == 303  # the member is in the team at once
        work_off_outbox(app)  # the worker tries while Stripe does not answer
    finally:
        os.kill(process.pid, signal.SIGCONT)
    with app.app_context():
        assert db.session.query(Membership).filter_by(user_id=joiner_id).count() == 1
        tried = (
            db.session.query(OutboxMessage)
            .filter(OutboxMessage.kind == "sync_seats", OutboxMessage.attempts > 0)
            .all()
        )
        assert tried and all((r.status, r.attempts) == ("pending", 1) for r in tried)
        assert all("BillingUnavailableError" in r.last_error for r in tried)
    from portal.outbox.service import process_due

    time.sleep(0.5)
    with app.test_request_context():
        process_due(now=utcnow().replace(year=utcnow().year + 1))
    assert clinic.stripe_quantity() == clinic.local_quantity() == 2
    with app.app_context():
        done = db.session.query(OutboxMessage).filter_by(kind="sync_seats", status="done").count()
        pending = (
            db.session.query(OutboxMessage).filter_by(kind="sync_seats", status="pending").count()
        )
    assert pending == 0 and done >= 1


def test_reconcile_repairs_a_quantity_changed_behind_our_back(clinic, app):
    clinic.invite_and_accept("member@clinic.example")
    item = clinic.stripe.get(f"/v1/subscriptions/{clinic.subscription_id}")["items"]["data"][0]
    clinic.stripe.post(
        f"/v1/subscriptions/{clinic.subscription_id}",
        {"items[0][id]": item["id"], "items[0][quantity]": "7"},
    )
    assert clinic.stripe_quantity() == 7
    result = app.test_cli_runner().invoke(args=["billing", "reconcile"])
    assert result.exit_code == 0, result.output
    assert "subscription" in result.output and "quantity set to 2" in result.output
    assert clinic.stripe_quantity() == 2
    again = app.test_cli_runner().invoke(args=["billing", "reconcile"])
    assert "0 drift(s) fixed" in again.output
