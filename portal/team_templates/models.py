from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.clock import utcnow
from portal.extensions import db


class NoteTemplate(db.Model):
    """A note template: personal (owner_id) or the team's (team_id), never both."""

    __tablename__ = "note_templates"
    __table_args__ = (CheckConstraint("(owner_id IS NULL) <> (team_id IS NULL)", name="one_scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(120))
    specialty: Mapped[str | None] = mapped_column(String(80))
    body: Mapped[str] = mapped_column(Text)
    # Title and specialty lower-cased in Python: SQLite's lower() knows only A-Z, not Æ, Ø, Å.
    search_text: Mapped[str] = mapped_column(String(210), default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def is_team_template(self) -> bool:
        return self.team_id is not None
