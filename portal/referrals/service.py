"""Affiliate links: every paying user has one; sign-ups through it are attributed to them."""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.auth.models import User
from portal.billing.service import plan_of
from portal.extensions import db
from portal.referrals.models import Referral
from portal.teams.queries import membership_of


def has_affiliate_link(user: User) -> bool:
    """Pro and Practice users have a link (their own plan or their team's)."""
    return plan_of(user, membership_of(user)).plan != "free"


def record_signup(new_user: User, code: str | None, *, now: datetime) -> Referral | None:
    """Credit the referrer of a sign-up, if the code is valid and its owner is still paying."""
    if not code:
        return None
    referrer = db.session.scalar(select(User).where(User.referral_code == code))
    if referrer is None or referrer.id == new_user.id or not has_affiliate_link(referrer):
        return None
    if db.session.scalar(select(Referral.id).where(Referral.referred_id == new_user.id)):
        return None
    referral = Referral(referrer_id=referrer.id, referred_id=new_user.id, created_at=now)
    db.session.add(referral)
    return referral


def referrals_of(user: User) -> list[tuple[Referral, bool]]:
    """The user's referrals, newest first, each with whether the referred person pays now."""
    rows = db.session.scalars(
        select(Referral)
        .options(joinedload(Referral.referred))
        .where(Referral.referrer_id == user.id)
        .order_by(Referral.created_at.desc())
    ).all()
    return [
        (row, plan_of(row.referred, membership_of(row.referred)).plan != "free") for row in rows
    ]
