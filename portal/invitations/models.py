from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.auth.models import User
from portal.clock import utcnow
from portal.extensions import db
from portal.teams.models import Team

STATUSES = ("pending", "accepted", "declined", "revoked")


class Invitation(db.Model):
    __tablename__ = "invitations"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'accepted', 'declined', 'revoked')", name="status"),
        CheckConstraint("role IN ('admin', 'member', 'assistant')", name="role"),
        # At most one pending invitation per team and address.
        Index(
            "uq_invitations_pending_email",
            "team_id",
            "email",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # None once the team is deleted: the revoked link still says why it stopped working.
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    # The name the admin pasted or uploaded with the address: it pre-fills the sign-up.
    name: Mapped[str | None] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(12))
    # sha256 of the link's token; the token itself is only in the email.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(12), default="pending")
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    responded_at: Mapped[datetime | None]
    # When the "expires in 5 days" reminder went out (once per invitation).
    reminded_at: Mapped[datetime | None]
    accepted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    team: Mapped[Team | None] = relationship()
    invited_by: Mapped[User | None] = relationship(foreign_keys=[invited_by_id])


class SupersededToken(db.Model):
    """The hash of a link replaced by a resend, so the old link can say why it stopped."""

    __tablename__ = "superseded_invitation_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    invitation_id: Mapped[int] = mapped_column(ForeignKey("invitations.id"), index=True)
    superseded_at: Mapped[datetime] = mapped_column(default=utcnow)
