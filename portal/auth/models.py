from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from portal.clock import utcnow
from portal.extensions import db


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    locale: Mapped[str | None] = mapped_column(String(5))
    email_verified_at: Mapped[datetime | None]
    session_version: Mapped[int] = mapped_column(default=1)
    trial_used_at: Mapped[datetime | None]
    stripe_customer_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    referral_code: Mapped[str | None] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Updated at most once an hour while signed in: the member list's "last active".
    last_seen_at: Mapped[datetime | None]
    # Email change (portal.email_change): the links name the time of the last change, so a link
    # made before another change (or an undo) no longer works.
    email_changed_at: Mapped[datetime | None]
    email_undone_at: Mapped[datetime | None]
    # Account deletion (portal.personal_data): the row stays for invoices and the audit log.
    deleted_at: Mapped[datetime | None]

    def get_id(self) -> str:
        # The session version in the id lets logout and a password change end every session.
        return f"{self.id}:{self.session_version}"

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None

    def __repr__(self) -> str:
        return f"<User {self.id}>"
