"""CSV exports for data protection officers and accountants: the members and the activity log.

Cells that a spreadsheet would read as a formula (=, +, -, @, tab, CR) are prefixed with an
apostrophe (OWASP "CSV injection"): a name is data, never a formula.
"""

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from portal.audit import service as audit
from portal.audit.models import AuditEvent
from portal.auth.models import User
from portal.extensions import db
from portal.teams.models import PAID_ROLES, Membership, Team

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_lines(header: list[str], rows: Iterable[Iterable]) -> Iterator[str]:
    """The CSV text line by line (to stream), with a BOM so Excel reads UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(header)
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def member_rows(team: Team, *, zone: ZoneInfo) -> list[tuple]:
    """Name, email, role, seat, joined and last active of every member, owner first."""
    rows = (
        select(User.name, User.email, Membership.role, Membership.created_at, User.last_seen_at)
        .join(User, User.id == Membership.user_id)
        .where(Membership.team_id == team.id)
        .order_by(User.id != team.owner_id, User.name, Membership.id)
    )
    return [
        (
            name,
            email,
            role,
            "paid" if role in PAID_ROLES else "free",
            _local(joined, zone),
            _local(seen, zone),
        )
        for name, email, role, joined, seen in db.session.execute(rows)
    ]


def activity_rows(team_id: int, f: audit.LogFilter, *, zone: ZoneInfo) -> list[tuple]:
    """The team's log, oldest first, as the filter narrows it."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.team_id == team_id, *f.conditions(zone))
        .order_by(AuditEvent.id)
    )
    return [
        (
            _local(event.created_at, zone),
            event.actor_name,
            event.action,
            audit.describe(event),
            event.target,
        )
        for event in db.session.scalars(query)
    ]


def people_in_log(team_id: int) -> list[str]:
    """Who appears in the team's log (for the export's person filter)."""
    return list(
        db.session.scalars(
            select(AuditEvent.actor_name)
            .where(AuditEvent.team_id == team_id)
            .distinct()
            .order_by(AuditEvent.actor_name)
        )
    )


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return ""
    return value.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone).strftime("%Y-%m-%d %H:%M")
