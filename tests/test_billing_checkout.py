import json
import signal
import threading
import time

import pytest
import requests
from werkzeug.serving import make_server

from portal import create_app
from portal.auth.models import User
from portal.billing.models import StripeEvent, Subscription
from portal.extensions import db
from tests.conftest import LOCAL_STRIPE, app_config, free_port, post_event


def start_checkout(client, plan="pro", interval="month"):
    response = client.post("/billing/checkout", data={"plan": plan, "interval": interval})
    assert response.status_code == 303, response.text
    return response.headers["Location"]


def subscriptions(app):
    with app.app_context():
        return db.session.query(Subscription).all()


def test_subscribing_to_pro_goes_through_stripe_checkout_and_the_webhook(
    client, app, make_user, login, stripe_api, deliver_events
):
    user_id = make_user()
    login(user_id)
    url = start_checkout(client)
    assert url.startswith(stripe_api.base + "/checkout/cs_test_")
    done = stripe_api.complete_checkout(url)
    assert done.status_code == 303
    assert "/billing/checkout/done?session_id=cs_test_" in done.headers["Location"]
    # Before the webhook arrives nothing is ours yet: the page says it is confirming.
    assert subscriptions(app) == []
    page = client.get("/billing/checkout/done")
    assert "Confirming your payment" in page.text
    responses = deliver_events()
    assert responses and all(r.status_code == 200 for r in responses)
    [row] = subscriptions(app)
    assert (row.plan, row.interval, row.status, row.quantity) == ("pro", "month", "active", 1)
    with app.app_context():
        customer = db.session.get(User, user_id).stripe_customer_id
    remote = stripe_api.list("subscriptions", customer=customer)
    assert [s["id"] for s in remote] == [row.stripe_subscription_id]
    assert remote[0]["items"]["data"][0]["quantity"] == 1
    done = client.get("/billing/checkout/done")
    assert done.status_code == 303
    assert "Your plan: Pro" in client.get("/settings/account").text


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ("4000000000000002", "Your card was declined."),
        ("4000000000000341", "Your card was declined when we tried to charge it."),
    ],
)
def test_a_refused_card_creates_no_subscription(
    client, app, make_user, login, stripe_api, card, message
):
    login(make_user())
    url = start_checkout(client)
    response = stripe_api.complete_checkout(url, card=card)
    assert response.status_code == 402
    assert message in response.text
    assert stripe_api.list("subscriptions") == []


def test_practice_starts_with_a_trial_only_once(
    client, app, make_user, login, stripe_api, deliver_events
):
    user_id = make_user()
    login(user_id)
    page = client.get("/settings/account").text
    assert "14-day free trial" in page
    stripe_api.complete_checkout(start_checkout(client, "practice", "year"))
    deliver_events()
    [row] = subscriptions(app)
    assert (row.plan, row.interval, row.status) == ("practice", "year", "trialing")
    assert row.trial_end is not None
    with app.app_context():
        assert db.session.get(User, user_id).trial_used_at is not None
    # The trial ends (canceled), and the user subscribes again: no second trial.
    stripe_api.post(
        f"/_config/subscriptions/{row.stripe_subscription_id}",
        {"status": "canceled", "event": "customer.subscription.deleted"},
    )
    deliver_events()
    assert subscriptions(app)[0].status == "canceled"
    assert "14-day free trial" not in client.get("/settings/account").text
    stripe_api.complete_checkout(start_checkout(client, "practice", "month"))
    deliver_events()
    newest = max(subscriptions(app), key=lambda s: s.id)
    assert newest.status == "active"


def test_a_subscriber_cannot_start_a_second_checkout(
    client, app, make_user, login, stripe_api, deliver_events
):
    login(make_user())
    stripe_api.complete_checkout(start_checkout(client))
    deliver_events()
    response = client.post("/billing/checkout", data={"plan": "practice", "interval": "month"})
    assert response.headers["Location"] == "/settings/account"
    assert len(stripe_api.list("subscriptions")) == 1


def test_manage_billing_opens_a_portal_session_for_the_users_own_customer(
    client, app, make_user, login, stripe_api, deliver_events
):
    user_id = make_user()
    login(user_id)
    assert client.post("/billing/portal").status_code == 403
    stripe_api.complete_checkout(start_checkout(client))
    deliver_events()
    response = client.post("/billing/portal", data={"customer": "cus_someone_else"})
    assert response.status_code == 303
    portal = response.headers["Location"]
    assert portal.startswith(stripe_api.base + "/portal/bps_")
    page = requests.get(portal, timeout=10).text
    assert "user1@clinic.example" in page and "Card ending in 4242" in page


def test_webhook_rejects_bad_signatures_and_stale_timestamps(client, app, stripe_api):
    event = {"id": "evt_1", "type": "customer.subscription.updated", "data": {"object": {}}}
    payload = json.dumps(event).encode()
    assert client.post("/billing/webhook", data=payload).status_code == 400
    assert post_event(client, event, secret="whsec_wrong").status_code == 400
    assert post_event(client, event, timestamp=int(time.time()) - 600).status_code == 400
    assert client.get("/billing/webhook").status_code == 405
    with app.app_context():
        assert db.session.query(StripeEvent).count() == 0


def test_a_duplicate_event_is_applied_once(
    client, app, make_user, login, stripe_api, deliver_events
):
    login(make_user())
    stripe_api.complete_checkout(start_checkout(client))
    [completed] = [e for e in stripe_api.events(0) if e["type"] == "checkout.session.completed"]
    first = post_event(client, completed)
    second = post_event(client, completed)
    assert first.json == {"status": "ok"}
    assert second.status_code == 200 and second.json == {"status": "duplicate"}
    assert len(subscriptions(app)) == 1


def test_an_event_for_an_unknown_customer_is_acknowledged_and_ignored(client, app, stripe_api):
    customer = stripe_api.post("/v1/customers", {"email": "elsewhere@clinic.example"})
    price = stripe_api.list("prices")[0]["id"]
    subscription = stripe_api.post(
        "/v1/subscriptions",
        {"customer": customer["id"], "items[0][price]": price, "trial_period_days": 14},
    )
    event = {
        "id": "evt_unknown",
        "type": "customer.subscription.updated",
        "data": {"object": {"id": subscription["id"], "object": "subscription"}},
    }
    assert post_event(client, event).status_code == 200
    assert subscriptions(app) == []


def test_an_event_for_a_subscription_stripe_does_not_know_is_acknowledged(client, app, stripe_api):
    event = {
        "id": "evt_gone",
        "type": "customer.subscription.updated",
        "data": {"object": {"id": "sub_does_not_exist", "object": "subscription"}},
    }
    assert post_event(client, event).status_code == 200  # else Stripe retries it for days
    assert subscriptions(app) == []


@pytest.mark.parametrize("app_overrides", [{"STRIPE_READ_TIMEOUT": 1}])
def test_a_failure_while_handling_is_a_5xx_and_changes_nothing(client, app, stripe_api):
    customer = stripe_api.post("/v1/customers", {"email": "elsewhere@clinic.example"})
    price = stripe_api.list("prices")[0]["id"]
    subscription = stripe_api.post(
        "/v1/subscriptions",
        {"customer": customer["id"], "items[0][price]": price, "trial_period_days": 14},
    )
    event = {
        "id": "evt_broken",
        "type": "customer.subscription.updated",
        "data": {"object": {"id": subscription["id"], "object": "subscription"}},
    }
    process = LOCAL_STRIPE["process"]
    process.send_signal(signal.SIGSTOP)  # Stripe does not answer
    try:
        response = post_event(client, event)
    finally:
        process.send_signal(signal.SIGCONT)
    assert response.status_code == 500
    with app.app_context():
        assert db.session.query(StripeEvent).count() == 0  # so Stripe's retry is handled


def test_local_stripe_pushes_a_signed_webhook_to_the_portal_over_http(
    database_url, local_stripe, stripe_api, make_user
):
    """The portal under a real WSGI server on loopback; localstripe delivers the event."""
    port = free_port()
    live = create_app(app_config(database_url, local_stripe, SERVER_NAME=None))
    server = make_server("127.0.0.1", port, live, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # Local Stripe delivers each event about a second after it happens: let the previous
    # tests' events go by (to nobody) before this test's server listens.
    time.sleep(1.5)
    stripe_api.register_webhook(f"http://127.0.0.1:{port}/billing/webhook")
    try:
        user_id = make_user()
        client = live.test_client()
        client.post(
            "/login", data={"email": "user1@clinic.example", "password": "correct horse battery"}
        )
        url = client.post("/billing/checkout", data={"plan": "pro", "interval": "month"})
        stripe_api.complete_checkout(url.headers["Location"])

        def handled():
            with live.app_context():
                return {e.type for e in db.session.query(StripeEvent)}

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "checkout.session.completed" not in handled():
            time.sleep(0.2)
        assert "checkout.session.completed" in handled()
        [row] = subscriptions(live)
        assert row.user_id == user_id and row.status == "active"
    finally:
        stripe_api.register_webhook("http://127.0.0.1:9/muted", events=[])
        server.shutdown()
        thread.join(5)
        with live.app_context():
            db.engine.dispose()
