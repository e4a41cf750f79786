from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.auth.models import User
from portal.billing.models import Subscription
from portal.clock import utcnow
from portal.extensions import db
from portal.i18n import lazy_gettext as _l

ROLES = ("admin", "member", "assistant")
# The paid seat: everyone but assistants, who are free (DESIGN §2). Every count and every
# "is this a paid seat" uses this one constant.
PAID_ROLES = ("admin", "member")
ROLE_LABELS = {
    "member": _l("Member"),
    "admin": _l("Admin"),
    "assistant": _l("Assistant (free)"),
}


class Team(db.Model):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    locale: Mapped[str] = mapped_column(String(5), default="en")
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id"), unique=True)
    managed_contact: Mapped[str | None] = mapped_column(String(200))
    sharing_enabled: Mapped[bool] = mapped_column(default=False)
    # Members without two-step sign-in reach only its set-up page (portal.twofa.views).
    require_two_factor: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Bumped under the team lock at every seat change; names the Stripe idempotency key.
    seat_version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner: Mapped[User] = relationship(foreign_keys=[owner_id])
    subscription: Mapped[Subscription] = relationship()

    @property
    def plan(self) -> str:
        return self.subscription.plan

    @property
    def is_active(self) -> bool:
        return self.subscription.is_live

    @property
    def is_practice(self) -> bool:
        return self.subscription.plan == "practice" and self.is_active


class Membership(db.Model):
    __tablename__ = "memberships"
    __table_args__ = (CheckConstraint("role IN ('admin', 'member', 'assistant')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), index=True)
    # One team per user, enforced by the database.
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    role: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    team: Mapped[Team] = relationship()
    user: Mapped[User] = relationship()

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_owner(self) -> bool:
        return self.user_id == self.team.owner_id

    @property
    def is_paid_seat(self) -> bool:
        return self.role in PAID_ROLES
