"""Ownership transfer: the owner offers the team to another admin, who accepts by emailed link.

The link follows the invitation rules (a random token of which only the sha256 is stored,
valid OFFER_DAYS, GET changes nothing, bound to the target's account). Accepting moves the
team, its subscription and its Stripe customer to the new owner in one transaction under the
team lock; the Stripe metadata follows through the outbox (docs/decisions.md, Billing).
"""

import secrets
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import aliased

from portal import permissions
from portal.audit import service as audit
from portal.auth.models import User
from portal.billing.stripe_gateway import gateway
from portal.clock import utcnow
from portal.exceptions import ConflictError, NotAllowedError
from portal.extensions import db
from portal.i18n import gettext as _
from portal.invitations.service import hash_token
from portal.links import public_url
from portal.outbox.service import EMAIL_GUARDS, email_user, enqueue, handler
from portal.ownership.models import OwnershipTransfer
from portal.teams.models import Membership, Team
from portal.teams.queries import find_member, lock_team

OFFER_DAYS = 7
# The new owner is reminded to check the card on file until they open Manage billing, or
# for this long after accepting.
CARD_CHECK_DAYS = 14


class OfferGoneError(Exception):
    """The offer is no longer pending (answered, cancelled, lapsed or expired)."""


class WrongAccountError(Exception):
    """Signed in as someone other than the admin the offer was made to."""


def expiry(now: datetime) -> datetime:
    """When an offer made now stops working."""
    return now + timedelta(days=OFFER_DAYS)


def state(offer: OwnershipTransfer, now: datetime) -> str:
    """pending, expired, accepted, declined, cancelled or lapsed."""
    if offer.status == "pending" and offer.team_id is None:
        return "cancelled"
    if offer.status == "pending" and offer.expires_at <= now:
        return "expired"
    return offer.status


def find_by_token(raw: str) -> OwnershipTransfer | None:
    if not raw or len(raw) > 200:
        return None
    return db.session.scalar(
        select(OwnershipTransfer).where(OwnershipTransfer.token_hash == hash_token(raw))
    )


def pending_offer(team: Team, *, now: datetime) -> OwnershipTransfer | None:
    """The team's offer that can still be accepted, if any (the team page's line)."""
    offer = db.session.scalar(
        select(OwnershipTransfer).where(
            OwnershipTransfer.team_id == team.id, OwnershipTransfer.status == "pending"
        )
    )
    return offer if offer is not None and state(offer, now) == "pending" else None


_TO, _FROM = aliased(User), aliased(User)
# Built once: a statement with new aliases on every request would be compiled every time.
OFFER_LINE = (
    select(
        OwnershipTransfer.to_user_id,
        _TO.name.label("to_name"),
        _FROM.name.label("from_name"),
        OwnershipTransfer.expires_at,
    )
    .join(_TO, _TO.id == OwnershipTransfer.to_user_id)
    .join(_FROM, _FROM.id == OwnershipTransfer.from_user_id)
    .where(
        OwnershipTransfer.team_id == bindparam("team_id"),
        OwnershipTransfer.status == "pending",
        OwnershipTransfer.expires_at > bindparam("now"),
    )
)


def offer_line(me: Membership, *, now: datetime):
    """For the team page's admins: the pending offer as one plain row (to_user_id, to_name,
    from_name, expires_at), in one statement; None for everyone else, without a query."""
    if not permissions.can_manage_team(me, me.team):
        return None
    return db.session.execute(OFFER_LINE, {"team_id": me.team_id, "now": now}).first()


def candidates(me: Membership) -> list[Membership]:
    """The admins the owner may offer the team to, by name."""
    admins = db.session.scalars(
        select(Membership)
        .join(User, User.id == Membership.user_id)
        .where(Membership.team_id == me.team_id, Membership.role == "admin")
        .order_by(User.name, Membership.id)
    )
    return [m for m in admins if permissions.can_receive_ownership(me, m)]


def offer_ownership(me: Membership, membership_id: int, *, now: datetime) -> OwnershipTransfer:
    """Offer the team to another admin: one pending offer per team, emailed with its link."""
    if not permissions.can_transfer_ownership(me, me.team):
        raise NotAllowedError("only the owner transfers ownership")
    team = lock_team(me.team_id)
    target = find_member(team, membership_id)
    if not permissions.can_receive_ownership(me, target):
        raise ConflictError(_("Ownership can only go to another admin of the team."))
    current = db.session.scalar(
        select(OwnershipTransfer)
        .where(OwnershipTransfer.team_id == team.id, OwnershipTransfer.status == "pending")
        .execution_options(populate_existing=True)
    )
    if current is not None and state(current, now) == "pending":
        raise ConflictError(
            _(
                "Ownership is already offered to %(name)s. Cancel that offer first.",
                name=current.to_user.name,
            )
        )
    if current is not None:
        current.status = "expired"
        db.session.flush()
    offer = OwnershipTransfer(
        team_id=team.id,
        from_user_id=me.user_id,
        to_user_id=target.user_id,
        created_at=now,
        expires_at=expiry(now),
    )
    raw = secrets.token_urlsafe(32)  # 256 bits
    offer.token_hash = hash_token(raw)
    db.session.add(offer)
    db.session.flush()
    email_user(
        target.user,
        "ownership_offer",
        key=f"ownership:{offer.id}:offer",
        guard=("ownership_offer", {"id": offer.id}),
        now=now,
        team=team,
        owner=me.user,
        expires_at=offer.expires_at,
        link=public_url("ownership.show", token=raw),
    )
    audit.record(team.id, "ownership.offered", actor=me.user, now=now, target=target.user.name)
    return offer


def cancel_offer(me: Membership, *, now: datetime) -> OwnershipTransfer:
    """The owner withdraws the pending offer; its link stops working."""
    if not permissions.can_transfer_ownership(me, me.team):
        raise NotAllowedError("only the owner cancels the offer")
    team = lock_team(me.team_id)
    offer = pending_offer(team, now=now)
    if offer is None:
        raise ConflictError(_("There is no pending ownership offer to cancel."))
    offer.status = "cancelled"
    offer.responded_at = now
    audit.record(team.id, "ownership.cancelled", actor=me.user, now=now, target=offer.to_user.name)
    return offer


def offer_case(offer: OwnershipTransfer, user, me: Membership | None) -> str:
    """What the link offers this visitor: login, other_account, not_admin or accept."""
    if not getattr(user, "is_authenticated", False):
        return "login"
    if user.id != offer.to_user_id:
        return "other_account"
    if not permissions.can_answer_ownership(me, offer):
        return "not_admin"
    return "accept"


def _consume(offer: OwnershipTransfer, *, now: datetime, status: str) -> None:
    """Answer a pending, unexpired offer once: of two parallel clicks the second raises."""
    answered = db.session.execute(
        update(OwnershipTransfer)
        .where(
            OwnershipTransfer.id == offer.id,
            OwnershipTransfer.status == "pending",
            OwnershipTransfer.expires_at > now,
        )
        .values(status=status, responded_at=now)
        .execution_options(synchronize_session=False)
    )
    if answered.rowcount != 1:
        raise OfferGoneError()


def _answerable(offer: OwnershipTransfer, user: User) -> tuple[Team, Membership]:
    """Lock the team and check, as things are now, that this user may answer the offer."""
    if offer.to_user_id != getattr(user, "id", None):
        raise WrongAccountError()
    if offer.team_id is None:
        raise OfferGoneError()
    team = lock_team(offer.team_id)
    me = db.session.scalar(
        select(Membership)
        .where(Membership.user_id == user.id)
        .execution_options(populate_existing=True)
    )
    if not permissions.can_answer_ownership(me, offer) or team.owner_id != offer.from_user_id:
        raise OfferGoneError()
    return team, me


def accept_offer(offer: OwnershipTransfer, user: User, *, now: datetime) -> Team:
    """Become the owner and billing owner; the old owner stays an admin. One transaction."""
    team, _me = _answerable(offer, user)
    _consume(offer, now=now, status="accepted")
    old_owner = team.owner
    subscription = team.subscription
    team.owner_id = user.id
    subscription.user_id = user.id  # who pays (billing.service.own_subscription)
    # The Stripe customer is the clinic's billing account: it moves with the subscription.
    # Unique per user, so the old owner lets go of it first.
    if old_owner.stripe_customer_id == subscription.stripe_customer_id:
        old_owner.stripe_customer_id = None
        db.session.flush()
    user.stripe_customer_id = subscription.stripe_customer_id
    db.session.flush()
    db.session.refresh(team)
    audit.record(team.id, "ownership.accepted", actor=user, now=now, target=old_owner.name)
    link = public_url("billing.team")
    email_user(
        user,
        "ownership_new_owner",
        key=f"ownership:{offer.id}:new",
        now=now,
        team=team,
        old_owner=old_owner,
        link=link,
    )
    email_user(
        old_owner,
        "ownership_old_owner",
        key=f"ownership:{offer.id}:old",
        now=now,
        team=team,
        new_owner=user,
        link=public_url("teams.show"),
    )
    enqueue(
        "ownership_to_stripe",
        {"transfer_id": offer.id},
        key=f"ownership_to_stripe:{team.id}:{offer.id}",
        now=now,
    )
    return team


def decline_offer(offer: OwnershipTransfer, user: User, *, now: datetime) -> None:
    """The admin turns the offer down; the owner is told."""
    team, _me = _answerable(offer, user)
    _consume(offer, now=now, status="declined")
    audit.record(team.id, "ownership.declined", actor=user, now=now, target=team.owner.name)
    email_user(
        team.owner,
        "ownership_declined",
        key=f"ownership:{offer.id}:declined",
        now=now,
        team=team,
        admin=user,
        link=public_url("teams.show"),
    )


def on_admin_gone(team_id: int, user: User, *, actor: User | None, now: datetime) -> None:
    """The target left, was removed or is no longer an admin: the offer to them lapses."""
    for offer in db.session.scalars(
        select(OwnershipTransfer).where(
            OwnershipTransfer.team_id == team_id,
            OwnershipTransfer.to_user_id == user.id,
            OwnershipTransfer.status == "pending",
        )
    ):
        offer.status = "lapsed"
        offer.responded_at = now
        audit.record(team_id, "ownership.lapsed", actor=actor, now=now, target=user.name)


def on_team_deleted(team_id: int, *, actor: User, now: datetime) -> None:
    """A deleted team's pending offer is cancelled; its offers leave the team."""
    for offer in db.session.scalars(
        select(OwnershipTransfer).where(OwnershipTransfer.team_id == team_id)
    ):
        if offer.status == "pending":
            offer.status = "cancelled"
            offer.responded_at = now
            audit.record(
                team_id, "ownership.cancelled", actor=actor, now=now, target=offer.to_user.name
            )
        offer.team_id = None


def card_check_due(me: Membership, *, now: datetime) -> OwnershipTransfer | None:
    """The transfer that made `me` the owner, while they should still check the card on file."""
    if not permissions.can_change_billing(me, me.team):
        return None
    return db.session.scalar(
        select(OwnershipTransfer)
        .where(
            OwnershipTransfer.team_id == me.team_id,
            OwnershipTransfer.to_user_id == me.user_id,
            OwnershipTransfer.status == "accepted",
            OwnershipTransfer.card_checked_at.is_(None),
            OwnershipTransfer.responded_at > now - timedelta(days=CARD_CHECK_DAYS),
        )
        .order_by(OwnershipTransfer.id.desc())
        .limit(1)
    )


def card_checked(user: User, *, now: datetime) -> None:
    """The new owner opened Manage billing: stop asking them to check the card."""
    db.session.execute(
        update(OwnershipTransfer)
        .where(
            OwnershipTransfer.to_user_id == user.id,
            OwnershipTransfer.status == "accepted",
            OwnershipTransfer.card_checked_at.is_(None),
        )
        .values(card_checked_at=now)
        .execution_options(synchronize_session=False)
    )


@handler("ownership_to_stripe")
def carry_out_transfer(payload: dict, key: str) -> None:
    """Name the new owner in the Stripe customer's and subscription's metadata; the billing
    email and name follow them only where they were the old owner's own."""
    offer = db.session.get(OwnershipTransfer, payload["transfer_id"])
    team = offer.team if offer is not None else None
    if team is None:
        return  # the team was deleted meanwhile: its subscription went back with the owner
    subscription = team.subscription
    payer, old = subscription.user, offer.from_user  # who pays now, read when this runs
    stripe = gateway()
    customer = stripe.retrieve_customer(subscription.stripe_customer_id)
    fields = {"metadata": {"user_id": str(payer.id)}}
    if (customer.get("email") or "").lower() == old.email:
        fields["email"] = payer.email
    if customer.get("name") == old.name:
        fields["name"] = payer.name
    stripe.update_customer(subscription.stripe_customer_id, fields)
    stripe.set_subscription_metadata(
        subscription.stripe_subscription_id,
        {"user_id": str(payer.id)},
        idempotency_key=key,
    )


def _offer_still_wanted(guard: dict) -> bool:
    """The offer email goes out only while the offer is pending."""
    offer = db.session.get(OwnershipTransfer, guard["id"])
    return offer is not None and state(offer, utcnow()) == "pending"


EMAIL_GUARDS["ownership_offer"] = _offer_still_wanted
