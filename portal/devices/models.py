from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.clock import utcnow
from portal.extensions import db


class UserSession(db.Model):
    """One signed-in session (a browser on a device). The signed session cookie carries a
    random id; only its SHA-256 is stored, so a copy of the table opens no session. Ending a
    session deletes its row: the cookie then finds nothing and is signed out."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Updated at most every few minutes while the session is used (service.TOUCH_EVERY).
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    # The address the device signed in from (IPv6 fits in 45 characters). It stays the same:
    # Flask-Login's strong session protection ends a session whose address changes.
    ip: Mapped[str | None] = mapped_column(String(45))

    def __repr__(self) -> str:
        return f"<UserSession {self.id} of user {self.user_id}>"
