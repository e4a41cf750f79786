from datetime import datetime

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.clock import utcnow
from portal.extensions import db


class AuditEvent(db.Model):
    """Append-only: rows are written, never updated or deleted (they outlive a deleted team)."""

    __tablename__ = "audit_events"
    # A team's page of the log is the newest ids of that team: one index range, read backwards,
    # however many rows other teams have written since.
    __table_args__ = (Index("ix_audit_events_team_id_id", "team_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int]
    actor_id: Mapped[int | None]
    actor_name: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(254), default="")
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
