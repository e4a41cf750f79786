"""Plans, prices and subscriptions: the billing rules, with Stripe behind the gateway."""

import logging
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.auth.models import User
from portal.billing.models import INTERVALS, PLANS, StripeEvent, Subscription
from portal.billing.stripe_gateway import gateway, lookup_key
from portal.clock import from_timestamp
from portal.extensions import db

log = logging.getLogger(__name__)
PLAN_NAMES = {"free": "Free", "pro": "Pro", "practice": "Practice"}


class CheckoutNotAllowedError(Exception):
    """The user may not start this checkout (already subscribed, or a team pays)."""


class DuplicateEventError(Exception):
    """This Stripe event was handled before."""


# -- prices: the config is the one source; Stripe gets the same tiers from bootstrap --
def tier_prices(plan: str, interval: str) -> list[tuple[int | None, int]]:
    """Per-seat prices of a plan by volume tier: [(last seat or None, unit amount), ...]."""
    full = current_app.config["SEAT_PRICES"][(plan, interval)]
    return [
        (up_to, round(full * (100 - percent) / 100))
        for up_to, percent in current_app.config["DISCOUNT_TIERS"]
    ]


def seat_price(plan: str, interval: str, seats: int) -> int:
    """The per-seat price when the team has this many paid seats (volume pricing)."""
    for up_to, amount in tier_prices(plan, interval):
        if up_to is None or seats <= up_to:
            return amount
    raise AssertionError("the last tier has no upper bound")


def period_total(plan: str, interval: str, seats: int) -> int:
    return seat_price(plan, interval, seats) * seats if seats else 0


def bootstrap_prices() -> list[str]:
    """Create the products and tiered prices in Stripe unless they exist as configured."""
    stripe = gateway()
    keys = [lookup_key(plan, interval) for plan in PLANS for interval in INTERVALS]
    existing = stripe.prices(keys)
    created = []
    for plan in PLANS:
        product = f"portal_{plan}"
        stripe.ensure_product(product, f"Clinic Teams {PLAN_NAMES[plan]}")
        for interval in INTERVALS:
            key = lookup_key(plan, interval)
            tiers = tier_prices(plan, interval)
            if key in existing and existing[key].tiers == tiers:
                continue
            stripe.create_tiered_price(
                product=product,
                key=key,
                interval=interval,
                tiers=tiers,
                nickname=f"{PLAN_NAMES[plan]} seat ({interval})",
            )
            created.append(key)
    return created


def price_id(plan: str, interval: str) -> str:
    key = lookup_key(plan, interval)
    prices = gateway().prices([key])
    if key not in prices:
        raise RuntimeError(f"No Stripe price with lookup_key {key}: run `flask billing bootstrap`")
    return prices[key].id


# -- a user's own plan --
@dataclass(frozen=True)
class PlanInfo:
    plan: str  # free, pro or practice
    subscription: Subscription | None
    via_team: bool = False

    @property
    def name(self) -> str:
        return PLAN_NAMES[self.plan]


def own_subscription(user: User) -> Subscription | None:
    """The user's own live (or past due) subscription, the one they pay for."""
    return db.session.scalar(
        select(Subscription)
        .where(
            Subscription.user_id == user.id,
            Subscription.status.in_(("trialing", "active", "past_due", "incomplete")),
        )
        .order_by(Subscription.id.desc())
        .limit(1)
    )


def plan_of(user: User) -> PlanInfo:
    """Which plan a user has now, and where it comes from."""
    subscription = own_subscription(user)
    if subscription and subscription.is_live:
        return PlanInfo(subscription.plan, subscription)
    return PlanInfo("free", subscription)


def trial_available(user: User) -> bool:
    return user.trial_used_at is None


def start_checkout(
    user: User, *, plan: str, interval: str, success_url: str, cancel_url: str, now: datetime
) -> str:
    """Create a Stripe Checkout Session for the user's own subscription; return its URL."""
    if plan not in PLANS or interval not in INTERVALS:
        raise CheckoutNotAllowedError("unknown plan")
    if plan_of(user).plan != "free":
        raise CheckoutNotAllowedError("already subscribed")
    stripe = gateway()
    if not user.stripe_customer_id:
        user.stripe_customer_id = stripe.create_customer(
            email=user.email, name=user.name, user_id=user.id, locale=user.locale
        )
        db.session.commit()
    trial = plan == "practice" and trial_available(user)
    session = stripe.create_checkout_session(
        customer=user.stripe_customer_id,
        price_id=price_id(plan, interval),
        user_id=user.id,
        trial_days=current_app.config["TRIAL_DAYS"] if trial else None,
        success_url=success_url,
        cancel_url=cancel_url,
        locale=user.locale or "en",
        idempotency_key=f"checkout:{user.id}:{plan}:{interval}:{now:%Y%m%d%H%M}",
    )
    return session["url"]


def sync_subscription(stripe_subscription_id: str, *, now: datetime) -> Subscription | None:
    """Re-read a subscription from Stripe and store what it says; None if it is not ours."""
    remote = gateway().retrieve_subscription(stripe_subscription_id)
    item = remote["items"]["data"][0]
    plan, _, interval = (item["price"].get("lookup_key") or "").rpartition("_")
    if plan not in PLANS:
        log.warning("subscription %s has an unknown price %s", remote["id"], item["price"]["id"])
        return None
    fields = {
        "stripe_customer_id": remote["customer"],
        "plan": plan,
        "interval": interval,
        "status": remote["status"],
        "quantity": int(item["quantity"]),
        "current_period_end": from_timestamp(
            item.get("current_period_end") or remote.get("current_period_end")
        ),
        "trial_end": from_timestamp(remote.get("trial_end")),
        "cancel_at_period_end": bool(remote.get("cancel_at_period_end")),
    }
    row = db.session.scalar(
        select(Subscription).where(Subscription.stripe_subscription_id == remote["id"])
    )
    if row is None:
        user = _owner_of(remote)
        if user is None:
            log.warning("subscription %s belongs to no user of ours", remote["id"])
            return None
        row = _insert_once(
            Subscription(stripe_subscription_id=remote["id"], user=user, created_at=now, **fields)
        )
    for name, value in fields.items():
        setattr(row, name, value)
    if remote["status"] == "trialing" and row.user.trial_used_at is None:
        row.user.trial_used_at = now
    db.session.flush()
    return row


def _insert_once(row: Subscription) -> Subscription:
    """Insert our copy, or take the one a concurrent delivery of another event just made."""
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        return db.session.scalar(
            select(Subscription).where(
                Subscription.stripe_subscription_id == row.stripe_subscription_id
            )
        )
    return row


def _owner_of(remote) -> User | None:
    user_id = (remote.get("metadata") or {}).get("user_id")
    user = db.session.get(User, int(user_id)) if user_id and str(user_id).isdigit() else None
    if user is not None and user.stripe_customer_id == remote["customer"]:
        return user
    return db.session.scalar(select(User).where(User.stripe_customer_id == remote["customer"]))


# -- webhooks --
def record_event(event: dict) -> None:
    """Remember an event id in this transaction; raise DuplicateEventError if seen before."""
    db.session.add(StripeEvent(event_id=event["id"], type=event["type"]))
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise DuplicateEventError(event["id"]) from None


def handle_event(event: dict, *, now: datetime) -> None:
    """Apply a verified Stripe event by re-reading the objects it names from the API."""
    record_event(event)
    kind = event["type"]
    obj = event["data"]["object"]
    if kind == "checkout.session.completed":
        session = gateway().retrieve_checkout_session(obj["id"])
        if session.get("subscription"):
            sync_subscription(session["subscription"], now=now)
    elif kind.startswith("customer.subscription."):
        sync_subscription(obj["id"], now=now)
    elif kind in ("invoice.paid", "invoice.payment_failed") and obj.get("subscription"):
        sync_subscription(obj["subscription"], now=now)
