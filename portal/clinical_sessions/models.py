from datetime import date, datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.auth.models import User
from portal.clock import utcnow
from portal.extensions import db


class ClinicalSession(db.Model):
    """A consultation record: private to its owner unless shared with the owner's team."""

    __tablename__ = "clinical_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(160))
    date: Mapped[date]
    note: Mapped[str] = mapped_column(Text, default="")
    # The team it is shared with (view only); access also needs sharing on and both in the team.
    shared_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    shared_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner: Mapped[User] = relationship()
