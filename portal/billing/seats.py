"""Seats follow membership: every membership change reaches Stripe through the outbox.

The quantity sent is always the absolute count read from the database when the outbox row
runs (under the team's row lock), never an increment; the idempotency key names the team's
seat version. A joiner's own subscription is cancelled and its unused part refunded.
"""

import logging
from datetime import datetime

from sqlalchemy import select

from portal.auth.models import User
from portal.billing import service as billing
from portal.billing.models import Subscription
from portal.billing.queries import seat_key_prefix
from portal.billing.stripe_gateway import gateway
from portal.clock import utcnow
from portal.extensions import db
from portal.links import public_url
from portal.outbox.service import email_user, enqueue, handler
from portal.teams.models import Membership, Team
from portal.teams.queries import lock_team, paid_seats

log = logging.getLogger(__name__)


def expected_quantity(subscription: Subscription) -> int:
    """Paid seats of the subscription's team, or one seat when no team uses it."""
    team = db.session.scalar(select(Team).where(Team.subscription_id == subscription.id))
    return paid_seats(team.id) if team else 1


def proration_for(subscription: Subscription, *, current: int, target: int) -> str:
    """Monthly: added seats on the next invoice. Annual: added seats invoiced pro rata at once.
    Removed seats are credited to the next invoice (DESIGN §2)."""
    if subscription.interval == "year" and target > current:
        return "always_invoice"
    return "create_prorations"


def seats_changed(team: Team, *, now: datetime) -> None:
    """The one place every seat change passes through: bump the team's seat version (which
    names the Stripe idempotency key) and queue the quantity sync."""
    team.seat_version += 1
    enqueue(
        "sync_seats",
        {"subscription_id": team.subscription_id},
        key=f"{seat_key_prefix(team.id)}{team.seat_version}",
        now=now,
    )


def on_team_deleted(team_id: int, subscription: Subscription, *, now: datetime) -> None:
    enqueue(
        "sync_seats",
        {"subscription_id": subscription.id},
        key=f"{seat_key_prefix(team_id)}deleted",
        now=now,
    )


@handler("sync_seats")
def sync_seats(payload: dict, key: str) -> None:
    subscription = db.session.get(Subscription, payload["subscription_id"])
    if subscription is None or not subscription.is_live:
        return
    team = db.session.scalar(select(Team).where(Team.subscription_id == subscription.id))
    if team is not None:
        lock_team(team.id)  # one seat change at a time per team
    set_quantity(subscription, expected_quantity(subscription), key=key)


def set_quantity(subscription: Subscription, target: int, *, key: str) -> bool:
    """Make Stripe's quantity equal `target`; return whether it had to change."""
    stripe = gateway()
    remote = stripe.retrieve_subscription(subscription.stripe_subscription_id)
    current = int(remote["items"]["data"][0]["quantity"])
    if current != target:
        stripe.set_subscription_item(
            remote,
            quantity=target,
            price_id=None,
            proration_behavior=proration_for(subscription, current=current, target=target),
            idempotency_key=key,
        )
    billing.sync_subscription(subscription.stripe_subscription_id, now=utcnow())
    return current != target


def reconcile(*, now: datetime) -> list[str]:
    """Bring Stripe's quantities (and our statuses) back in line with the database."""
    drifts = []
    rows = db.session.scalars(
        select(Subscription).where(Subscription.status.in_(("trialing", "active", "past_due")))
    ).all()
    for subscription in rows:
        status = subscription.status
        target = expected_quantity(subscription)
        key = f"reconcile:{subscription.id}:{int(now.timestamp())}"
        if set_quantity(subscription, target, key=key):
            drifts.append(f"subscription {subscription.id}: quantity set to {target}")
        if subscription.status != status:
            drifts.append(
                f"subscription {subscription.id}: status {status} → {subscription.status}"
            )
        db.session.commit()
    for drift in drifts:
        log.warning("reconcile fixed %s", drift)
    return drifts


def on_joined(membership: Membership, user: User, *, now: datetime) -> None:
    """A joiner who pays for their own plan: cancel it and refund the unused part."""
    own = billing.own_subscription(user)
    if own is not None:
        enqueue(
            "cancel_joiner_subscription",
            {"subscription_id": own.id, "team_id": membership.team_id},
            key=f"cancel-pro:{user.id}:{membership.id}",
            now=now,
        )


@handler("cancel_joiner_subscription")
def cancel_joiner_subscription(payload: dict, key: str) -> None:
    subscription = db.session.get(Subscription, payload["subscription_id"])
    stripe = gateway()
    remote = stripe.retrieve_subscription(subscription.stripe_subscription_id)
    refunded, charge = stripe.unused_amount(remote, now_ts=int(utcnow().timestamp()))
    if remote["status"] != "canceled":
        stripe.cancel_subscription(remote["id"], idempotency_key=f"{key}:cancel")
    # A retry after a failure here finds the subscription cancelled: still refund, once.
    if refunded and charge:
        refunded = stripe.refund_once(
            charge=charge, amount=refunded, idempotency_key=f"{key}:refund"
        )
    billing.sync_subscription(remote["id"], now=utcnow())
    team = db.session.get(Team, payload["team_id"])
    user = subscription.user
    email_user(
        user,
        "own_plan_cancelled",
        key=f"{key}:email",
        plan=billing.PLAN_NAMES[subscription.plan],
        team=team,
        refunded=refunded,
        link=public_url("teams.show"),
    )
