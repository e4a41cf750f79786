from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.clock import utcnow
from portal.extensions import db


class TwoFactor(db.Model):
    """A user's authenticator-app (TOTP) secret: set up but not yet confirmed while
    enabled_at is None; on once confirmed with a first code."""

    __tablename__ = "two_factor"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # Fernet token of the base32 secret (MultiFernet, keys from TOTP_ENCRYPTION_KEYS).
    secret_encrypted: Mapped[str] = mapped_column(Text)
    enabled_at: Mapped[datetime | None]
    # The last 30-second time step a code was accepted for: a step <= this one is refused,
    # so a code cannot be used twice (nor an older one replayed) within its window.
    last_used_step: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecoveryCode(db.Model):
    """One single-use recovery code, stored hashed (pbkdf2-sha256 with its own salt)."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(160))
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
