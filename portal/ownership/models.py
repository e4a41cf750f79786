from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.auth.models import User
from portal.clock import utcnow
from portal.extensions import db
from portal.teams.models import Team

# pending → accepted | declined | cancelled (by the owner, or the team was deleted) |
# lapsed (the target stopped being an admin of the team) | expired (set only when a new offer
# replaces one whose 7 days ran out; until then expiry is read from expires_at).
STATUSES = ("pending", "accepted", "declined", "cancelled", "lapsed", "expired")


class OwnershipTransfer(db.Model):
    __tablename__ = "ownership_transfers"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'accepted', 'declined', 'cancelled', 'lapsed', 'expired')",
            name="status",
        ),
        # One pending offer per team.
        Index(
            "uq_ownership_transfers_pending_team",
            "team_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # None once the team is deleted: the link still says why it stopped working.
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), index=True
    )
    from_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    to_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # sha256 of the link's token; the token itself is only in the email.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    responded_at: Mapped[datetime | None]
    # The new owner opened "Manage billing" (the card on file is the old owner's until then).
    card_checked_at: Mapped[datetime | None]

    team: Mapped[Team | None] = relationship()
    from_user: Mapped[User] = relationship(foreign_keys=[from_user_id])
    to_user: Mapped[User] = relationship(foreign_keys=[to_user_id])
