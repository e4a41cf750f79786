from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.auth.models import User
from portal.clock import utcnow
from portal.extensions import db

PLANS = ("pro", "practice")
INTERVALS = ("month", "year")
LIVE_STATUSES = ("trialing", "active", "past_due")


class Subscription(db.Model):
    """Our copy of a Stripe subscription, always re-read from Stripe, never edited by hand."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_subscription_id: Mapped[str] = mapped_column(String(64), unique=True)
    stripe_customer_id: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    plan: Mapped[str] = mapped_column(String(16))
    interval: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(24))
    quantity: Mapped[int] = mapped_column(default=1)
    current_period_end: Mapped[datetime | None]
    trial_end: Mapped[datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(default=False)
    # The bank asks the cardholder to confirm a payment (3-D Secure); cleared when paid.
    payment_action_required: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    user: Mapped[User] = relationship()

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES


class StripeEvent(db.Model):
    """Stripe event ids already handled: a second delivery of the same event does nothing."""

    __tablename__ = "stripe_events"

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(80))
    processed_at: Mapped[datetime] = mapped_column(default=utcnow)
