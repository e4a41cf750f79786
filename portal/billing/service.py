"""Plans, prices and subscriptions: the billing rules, with Stripe behind the gateway."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from portal import permissions
from portal.audit import service as audit
from portal.auth.models import User
from portal.billing.models import INTERVALS, PLANS, StripeEvent, Subscription
from portal.billing.stripe_gateway import (
    BillingUnavailableError,
    InvalidTaxIdError,
    PaymentDeclinedError,
    gateway,
    lookup_key,
)
from portal.clock import from_timestamp, utcnow
from portal.extensions import db
from portal.i18n import gettext as _
from portal.invitations.models import Invitation
from portal.links import public_url
from portal.outbox.models import OutboxMessage
from portal.outbox.service import GiveUp, email_user, enqueue, handler
from portal.teams.models import Membership, Team
from portal.teams.queries import lock_team, paid_seats

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


def price_id(plan: str, interval: str, *, stripe=None) -> str:
    key = lookup_key(plan, interval)
    prices = (stripe or gateway()).prices([key])
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


def plan_of(user: User, me: Membership | None) -> PlanInfo:
    """Which plan a user has now, and where it comes from: their team (membership `me`) comes
    first."""
    if me is not None:
        team = me.team
        return PlanInfo(team.plan if team.is_active else "free", team.subscription, via_team=True)
    subscription = own_subscription(user)
    if subscription and subscription.is_live:
        return PlanInfo(subscription.plan, subscription)
    return PlanInfo("free", subscription)


def trial_available(user: User) -> bool:
    return user.trial_used_at is None


def has_own_billing(user: User) -> bool:
    """Whether the user pays for a subscription of their own (the account page's "Manage")."""
    return getattr(user, "is_authenticated", False) and own_subscription(user) is not None


def start_checkout(
    user: User,
    me: Membership | None,
    *,
    plan: str,
    interval: str,
    success_url: str,
    cancel_url: str,
    now: datetime,
) -> str:
    """Create a Stripe Checkout Session for the user's own subscription; return its URL."""
    if plan not in PLANS or interval not in INTERVALS:
        raise CheckoutNotAllowedError("unknown plan")
    if plan_of(user, me).plan != "free" or (me is not None and not permissions.is_owner(me)):
        raise CheckoutNotAllowedError("already subscribed")
    # The owner of an ended team subscribes again for the whole team (reactivation).
    quantity, team_id = (paid_seats(me.team_id), me.team_id) if me else (1, None)
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
        quantity=quantity,
        team_id=team_id,
        user_id=user.id,
        trial_days=current_app.config["TRIAL_DAYS"] if trial else None,
        success_url=success_url,
        cancel_url=cancel_url,
        locale=user.locale or "en",
        idempotency_key=f"checkout:{user.id}:{plan}:{interval}:{quantity}:{now:%Y%m%d%H%M}",
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
    _reattach_team(row, remote)
    return row


def _reattach_team(row: Subscription, remote: dict) -> None:
    """A reactivation checkout: the team moves from its ended subscription to the new one."""
    team_id = (remote.get("metadata") or {}).get("team_id")
    if not row.is_live or not str(team_id or "").isdigit():
        return
    team = db.session.get(Team, int(team_id))
    if team is not None and team.owner_id == row.user_id and not team.subscription.is_live:
        team.subscription = row
        db.session.flush()


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


def forget_events(*, before: datetime) -> int:
    """Retention: forget handled event ids older than this (Stripe retries for 3 days at most)."""
    result = db.session.execute(delete(StripeEvent).where(StripeEvent.processed_at < before))
    return result.rowcount


INVOICE_EVENTS = ("invoice.paid", "invoice.payment_failed", "invoice.payment_action_required")


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
        row = sync_subscription(obj["id"], now=now)
        if row is not None and kind == "customer.subscription.trial_will_end":
            notify_owner(row, "trial_will_end", key=f"trial-end:{row.id}:{row.trial_end}", now=now)
    elif kind in INVOICE_EVENTS and obj.get("subscription"):
        row = sync_subscription(obj["subscription"], now=now)
        if row is None:
            return
        row.payment_action_required = kind == "invoice.payment_action_required"
        if kind != "invoice.paid":
            template = kind.removeprefix("invoice.")
            notify_owner(row, template, key=f"{template}:{obj['id']}", now=now)


def notify_owner(subscription: Subscription, template: str, *, key: str, now: datetime) -> None:
    """Email the person who pays (once per key) about their subscription."""
    owner = subscription.user
    team = db.session.scalar(select(Team).where(Team.subscription_id == subscription.id))
    email_user(
        owner,
        template,
        key=key,
        once=True,
        now=now,
        subscription=subscription,
        plan=PLAN_NAMES[subscription.plan],
        team=team,
        first_amount=_next_amount(subscription),
        link=public_url("billing.team" if team else "account.show"),
    )


def _next_amount(subscription: Subscription) -> int | None:
    try:
        remote = gateway().retrieve_subscription(subscription.stripe_subscription_id)
        return recurring_total(gateway().preview_invoice(remote))
    except BillingUnavailableError:
        return None


def recurring_total(preview: dict) -> int:
    """What the next period costs, without one-off proration lines."""
    return sum(line["amount"] for line in preview["lines"]["data"] if not line.get("proration"))


# -- the team's billing (owner changes it, admins see it) --
class BillingRuleError(Exception):
    """A billing change the rules refuse; the message says why, for the owner."""


def team_overview(team) -> dict:
    """What the billing page shows from Stripe: next invoice, invoices, invoice details. Read
    with the short timeout: when Stripe is slow the page says so rather than wait."""
    stripe = gateway(quick=True)
    subscription = team.subscription
    remote = stripe.retrieve_subscription(subscription.stripe_subscription_id)
    customer = stripe.retrieve_customer(subscription.stripe_customer_id)
    item = remote["items"]["data"][0]
    next_date = remote.get("trial_end") if remote["status"] == "trialing" else None
    return {
        "next_amount": recurring_total(stripe.preview_invoice(remote))
        if subscription.is_live
        else None,
        "next_date": from_timestamp(next_date or item.get("current_period_end")),
        "invoices": sorted(  # newest first, whatever order the API lists them in
            (
                {
                    "date": from_timestamp(invoice.get("created") or invoice.get("date")),
                    "amount": invoice["total"],
                    "currency": invoice["currency"],
                    "status": invoice["status"],
                    "url": invoice.get("hosted_invoice_url"),
                }
                for invoice in stripe.list_invoices(subscription.stripe_customer_id)
            ),
            key=lambda invoice: invoice["date"],
            reverse=True,
        ),
        "customer": {
            "name": customer.get("name") or "",
            "email": customer.get("email") or "",
            "vat": next((t["value"] for t in customer.get("tax_ids", {}).get("data", [])), ""),
            **{k: (customer.get("address") or {}).get(k) or "" for k in ADDRESS_FIELDS},
        },
    }


ADDRESS_FIELDS = ("line1", "postal_code", "city", "country")


def seat_preview(team, seats: int) -> int:
    """The team's recurring total per period at this many paid seats, from Stripe's preview."""
    stripe = gateway(quick=True)
    remote = stripe.retrieve_subscription(team.subscription.stripe_subscription_id)
    return recurring_total(stripe.preview_invoice(remote, quantity=max(seats, 1)))


def removal_preview(team) -> dict:
    """The team's recurring total now and after one paid seat less: Stripe's preview, or, when
    Stripe does not answer at once, our own prices (estimate=True)."""
    seats = paid_seats(team.id)
    try:
        before = seat_preview(team, seats)
        return {"before": before, "after": seat_preview(team, seats - 1), "estimate": False}
    except BillingUnavailableError:
        plan, interval = team.plan, team.subscription.interval
        return {
            "before": period_total(plan, interval, seats),
            "after": period_total(plan, interval, seats - 1),
            "estimate": True,
        }


def joiner_preview(user: User) -> dict | None:
    """For an invitee who pays for their own plan: the refund now, and what they stop paying."""
    subscription = own_subscription(user)
    if subscription is None or not subscription.is_live:
        return None
    stripe = gateway(quick=True)
    try:
        remote = stripe.retrieve_subscription(subscription.stripe_subscription_id)
        refund, _charge = stripe.unused_amount(remote, now_ts=int(utcnow().timestamp()))
        per_period = recurring_total(stripe.preview_invoice(remote))
    except BillingUnavailableError:
        return None
    return {"refund": refund, "per_period": per_period, "interval": subscription.interval}


# -- plan, cycle and invoice details: checked and previewed in the request, carried out by the
# worker (no request waits on a Stripe write); the billing page shows a change under way --
def check_plan_change(team, *, plan: str, interval: str) -> None:
    """Raise BillingRuleError, with the reason for the owner, if the team cannot switch."""
    if plan not in PLANS or plan == "free" or interval not in INTERVALS:
        raise BillingRuleError(_("Choose Pro or Practice, billed monthly or annually."))
    subscription = team.subscription
    if (plan, interval) == (subscription.plan, subscription.interval):
        raise BillingRuleError(_("The team is on this plan and billing cycle already."))
    if billing_change_pending(team.id, "change_plan"):
        raise BillingRuleError(_("A plan change is already on its way to Stripe. Wait a moment."))
    if plan == "pro" and _has_assistants(team.id):
        raise BillingRuleError(
            _(
                "Assistants exist only on Practice. Change your assistants to members or remove "
                "them, and revoke pending assistant invitations, then switch to Pro."
            )
        )


def _trial_end(team, plan: str, now: datetime) -> int | None:
    """A Pro team moving to Practice gets the owner's one free trial, if it is unused."""
    if plan == "practice" and team.subscription.plan == "pro" and trial_available(team.owner):
        return int((now + timedelta(days=current_app.config["TRIAL_DAYS"])).timestamp())
    return None


def plan_change_preview(team, *, plan: str, interval: str, now: datetime) -> dict:
    """What the switch costs: the price per seat, the new total per period and, from Stripe's
    invoice preview, the proration charged or credited now (and, when the billing cycle changes,
    what is invoiced at once). When Stripe does not answer at once,
    our own prices, marked as an estimate, and no proration."""
    seats = paid_seats(team.id)
    preview = {
        "plan": plan,
        "interval": interval,
        "seats": seats,
        "per_seat": seat_price(plan, interval, seats),
        "current_total": period_total(team.plan, team.subscription.interval, seats),
        "total": period_total(plan, interval, seats),
        "proration": None,
        "due_now": None,
        "trial_days": current_app.config["TRIAL_DAYS"] if _trial_end(team, plan, now) else None,
        "estimate": True,
    }
    if preview["trial_days"]:
        return {**preview, "estimate": False}  # nothing is charged until the trial ends
    try:
        stripe = gateway(quick=True)
        remote = stripe.retrieve_subscription(team.subscription.stripe_subscription_id)
        lines = stripe.preview_invoice(
            remote, quantity=max(seats, 1), price_id=price_id(plan, interval, stripe=stripe)
        )["lines"]["data"]
    except BillingUnavailableError:
        return preview
    total = sum(line["amount"] for line in lines if not line.get("proration"))
    proration = sum(line["amount"] for line in lines if line.get("proration"))
    # A new billing cycle starts at once, and Stripe invoices its first period straight away,
    # less the credit for the unused part of the old one.
    new_cycle = interval != team.subscription.interval
    return {
        **preview,
        "total": total,
        "proration": proration,
        "due_now": total + proration if new_cycle else None,
        "estimate": False,
    }


def request_plan_change(team, *, plan: str, interval: str, actor: User, now: datetime) -> None:
    """Queue the switch between Pro and Practice, monthly and annual, for the worker."""
    lock_team(team.id)  # seats and roles must not change while the plan does
    check_plan_change(team, plan=plan, interval=interval)
    enqueue(
        "change_plan",
        {"team_id": team.id, "plan": plan, "interval": interval, "actor_id": actor.id},
        key=f"change_plan:{team.id}:{int(now.timestamp() * 1000)}",
        now=now,
    )


@handler("change_plan")
def carry_out_plan_change(payload: dict, key: str) -> None:
    team = db.session.get(Team, payload["team_id"])
    if team is None or not team.subscription.is_live:
        return  # the team was deleted or its subscription ended meanwhile
    lock_team(team.id)
    plan, interval, now = payload["plan"], payload["interval"], utcnow()
    if plan == "pro" and _has_assistants(team.id):
        raise GiveUp("the team has assistants again; Pro has none")
    stripe = gateway()
    remote = stripe.retrieve_subscription(team.subscription.stripe_subscription_id)
    try:
        stripe.set_subscription_item(
            remote,
            quantity=paid_seats(team.id),
            price_id=price_id(plan, interval),
            proration_behavior="create_prorations",
            idempotency_key=key,
            trial_end=_trial_end(team, plan, now),
        )
    except PaymentDeclinedError as error:
        raise GiveUp(f"Stripe refused the payment: {error}") from error
    sync_subscription(team.subscription.stripe_subscription_id, now=now)
    audit.record(
        team.id,
        "billing.plan_changed",
        actor=db.session.get(User, payload["actor_id"]),
        now=now,
        target=f"{PLAN_NAMES[plan]} ({interval})",
    )


def _has_assistants(team_id: int) -> bool:
    """Assistants, or pending assistant invitations: either keeps a team on Practice."""
    return bool(
        db.session.scalar(
            select(Membership.id).where(
                Membership.team_id == team_id, Membership.role == "assistant"
            )
        )
        or db.session.scalar(
            select(Invitation.id).where(
                Invitation.team_id == team_id,
                Invitation.status == "pending",
                Invitation.role == "assistant",
            )
        )
    )


def request_invoice_details(team, details: dict, *, actor: User, now: datetime) -> None:
    """Queue the clinic's legal name, VAT/CVR number, address and billing email for Stripe."""
    fields = ("name", "email", "vat", *ADDRESS_FIELDS)
    enqueue(
        "update_invoice_details",
        {"team_id": team.id, "actor_id": actor.id, **{k: details[k] for k in fields}},
        key=f"update_invoice_details:{team.id}:{int(now.timestamp() * 1000)}",
        now=now,
    )


@handler("update_invoice_details")
def carry_out_invoice_details(payload: dict, key: str) -> None:
    team = db.session.get(Team, payload["team_id"])
    if team is None:
        return
    stripe = gateway()
    customer = team.subscription.stripe_customer_id
    try:
        stripe.replace_tax_id(customer, payload["vat"])  # the step Stripe may refuse goes first
    except InvalidTaxIdError as error:
        raise GiveUp(f"Stripe does not accept the VAT number {payload['vat']}") from error
    stripe.update_customer(
        customer,
        {
            "name": payload["name"],
            "email": payload["email"],
            "address": {k: payload[k] for k in ADDRESS_FIELDS},
        },
    )
    audit.record(
        team.id,
        "billing.details_changed",
        actor=db.session.get(User, payload["actor_id"]),
        now=utcnow(),
        target=payload["name"],
    )


def billing_change_pending(team_id: int, kind: str) -> OutboxMessage | None:
    """The team's queued or running change of this kind (change_plan, update_invoice_details:
    their keys start with the kind and the team's id)."""
    return db.session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.idempotency_key.startswith(f"{kind}:{team_id}:"),
            OutboxMessage.status.in_(("pending", "running")),
        )
    )


def billing_change_failed(team_id: int, kind: str) -> OutboxMessage | None:
    """The team's last change of this kind, if it failed for good (shown until the next one)."""
    last = db.session.scalar(
        select(OutboxMessage)
        .where(OutboxMessage.idempotency_key.startswith(f"{kind}:{team_id}:"))
        .order_by(OutboxMessage.id.desc())
        .limit(1)
    )
    return last if last is not None and last.status == "failed" else None


def cancel_for_deleted_account(subscription: Subscription, *, now: datetime) -> None:
    """The account is being deleted: the worker cancels its own subscription at once, without
    a refund of the period already paid (docs/decisions.md, Billing)."""
    enqueue(
        "cancel_deleted_account_subscription",
        {"subscription_id": subscription.id},
        key=f"cancel-deleted:{subscription.user_id}:{subscription.id}",
        now=now,
        once=True,
    )


@handler("cancel_deleted_account_subscription")
def carry_out_deletion_cancel(payload: dict, key: str) -> None:
    subscription = db.session.get(Subscription, payload["subscription_id"])
    if subscription is None:
        return
    stripe = gateway()
    remote = stripe.retrieve_subscription(subscription.stripe_subscription_id)
    if remote["status"] != "canceled":
        # prorate=False: no credit for the unused part; the paid invoice stays as it is.
        stripe.cancel_subscription(remote["id"], idempotency_key=f"{key}:cancel")
    sync_subscription(remote["id"], now=utcnow())
