"""Development only: Stripe objects for demo users, and their re-creation after a restart.

The local Stripe server keeps its state in memory, so each `make run` starts it empty; the
subscriptions in the database are then re-created there (same plan, cycle and quantity).
"""

from datetime import UTC

import requests
from flask import current_app
from sqlalchemy import select

from portal.auth.models import User
from portal.billing import service as billing
from portal.billing.models import Subscription
from portal.billing.seats import expected_quantity
from portal.billing.stripe_gateway import gateway
from portal.clock import utcnow
from portal.extensions import db


def _create_remote(user: User, *, plan: str, interval: str, quantity: int, trialing: bool) -> str:
    stripe = gateway()
    user.stripe_customer_id = stripe.create_customer(
        email=user.email, name=user.name, user_id=user.id, locale=user.locale
    )
    remote = stripe.create_subscription_with_test_card(
        customer=user.stripe_customer_id,
        price_id=billing.price_id(plan, interval),
        quantity=quantity,
        trial_days=14 if trialing else None,
        user_id=user.id,
    )
    return remote["id"]


def provision_subscription(
    user: User, *, plan: str, interval: str, quantity: int = 1, trialing: bool = False
) -> Subscription:
    """Give a user a paid (or trialing) subscription without going through Checkout."""
    remote_id = _create_remote(
        user, plan=plan, interval=interval, quantity=quantity, trialing=trialing
    )
    return billing.sync_subscription(remote_id, now=utcnow())


def add_invoice_history(subscription: Subscription, *, renewals: int) -> None:
    """Invoice and pay earlier periods, one a month back from now, so the demo has an invoice
    history that reads like one (not several identical invoices on one day)."""
    base = current_app.config["STRIPE_API_BASE"]
    now = int(utcnow().replace(tzinfo=UTC).timestamp())
    for months_back in range(renewals, 0, -1):
        requests.post(
            f"{base}/_config/subscriptions/{subscription.stripe_subscription_id}/renew",
            params={"created": now - months_back * 30 * 86400},
            timeout=10,
        ).raise_for_status()


def restore_subscriptions() -> int:
    """Re-create in a fresh local Stripe server the live subscriptions the database knows."""
    now = utcnow()
    rows = db.session.scalars(
        select(Subscription).where(Subscription.status.in_(("trialing", "active", "past_due")))
    ).all()
    for row in rows:
        row.stripe_subscription_id = _create_remote(
            row.user,
            plan=row.plan,
            interval=row.interval,
            quantity=expected_quantity(row),
            trialing=row.status == "trialing",
        )
        db.session.flush()
        billing.sync_subscription(row.stripe_subscription_id, now=now)
    db.session.commit()
    return len(rows)
