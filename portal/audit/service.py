"""The team audit log: who did what to whom, when."""

from datetime import date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import bindparam, select

from portal.audit.models import AuditEvent
from portal.auth.models import User
from portal.db import plain_rows
from portal.extensions import db
from portal.forms import plain
from portal.i18n import gettext as _
from portal.i18n import lazy_gettext as _l
from portal.teams.models import ROLE_LABELS

PAGE_SIZE = 10
# How each action reads on the team page; {target} is the email, name or value it concerns.
ACTIONS = {
    "team.created": _l("created the team"),
    "team.renamed": _l("renamed the team to %(target)s"),
    "team.language": _l("set the team language to %(target)s"),
    "invitation.sent": _l("invited %(target)s"),
    "invitation.resent": _l("resent the invitation to %(target)s"),
    "invitation.revoked": _l("revoked the invitation to %(target)s"),
    "invitation.accepted": _l("accepted the invitation (%(target)s)"),
    "invitation.declined": _l("declined the invitation (%(target)s)"),
    "member.removed": _l("removed %(target)s"),
    "member.left": _l("left the team"),
    "member.role": _l("changed the role of %(target)s from %(old)s to %(new)s"),
    "team.deleted": _l("deleted the team"),
    "template.created": _l("created the team template %(target)s"),
    "template.updated": _l("updated the team template %(target)s"),
    "template.saved": _l("saved the team template %(target)s"),  # entries from before 2026-12
    "export.members": _l("exported the member list"),
    "export.activity": _l("exported the activity log"),
    "template.deleted": _l("deleted the team template %(target)s"),
    "session.shared": _l("shared the session %(target)s with the team"),
    "session.unshared": _l("stopped sharing the session %(target)s"),
    "session.viewed": _l("viewed the shared session %(target)s"),
    "team.sharing_on": _l("turned session sharing on"),
    "team.sharing_off": _l("turned session sharing off"),
    "billing.plan_changed": _l("changed the plan to %(target)s"),
    "billing.details_changed": _l("changed the invoice details (%(target)s)"),
    "ownership.offered": _l("offered ownership of the team to %(target)s"),
    "ownership.cancelled": _l("cancelled the ownership offer to %(target)s"),
    "ownership.lapsed": _l("ended the ownership offer to %(target)s (no longer an admin)"),
    "ownership.accepted": _l("took over ownership of the team from %(target)s"),
    "ownership.declined": _l("declined ownership of the team (offered by %(target)s)"),
    "team.managed": _l("set the team as managed by %(target)s"),
    "team.unmanaged": _l("ended managed mode"),
    "team.two_factor_on": _l("required two-step sign-in for every member"),
    "team.two_factor_off": _l("stopped requiring two-step sign-in"),
}


# What a deleted account's name becomes in the log (and on the account row): stored as this
# code, shown in the reader's language (shown_names()).
DELETED_NAME = "deleted user"


def shown_names() -> dict[str, str]:
    """The stored names that read differently, translated once for a page."""
    return {DELETED_NAME: _("deleted user")}


def shown_name(name: str) -> str:
    """One stored name as a page shows it (a Jinja global; lists use shown_names())."""
    return shown_names().get(name, name)


def _one_line(text: str) -> str:
    # Names and addresses are shown as text; CR/LF would forge lines in exported logs.
    return text.replace("\r", " ").replace("\n", " ")


def record(
    team_id: int,
    action: str,
    *,
    actor: User | None,
    now: datetime,
    target: str = "",
    actor_name: str | None = None,
    **details,
) -> AuditEvent:
    """Append one entry to a team's audit log in the current transaction. `actor_name` names
    the actor when it is not the account's name (an invitee's address). Only actions in ACTIONS
    are recorded, so that every entry reads as a sentence on the team page."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}: add it to ACTIONS")
    event = AuditEvent(
        team_id=team_id,
        actor_id=actor.id if actor else None,
        # An invitee's address can be up to 254 characters; the column holds a name's 120.
        actor_name=_one_line(actor_name or (actor.name if actor else "system"))[:120],
        action=action,
        target=_one_line(target)[:254],
        details=details,
        created_at=now,
    )
    db.session.add(event)
    return event


# One page of the log, newest first, one row more to tell whether an older page exists.
PAGE = (
    select(
        AuditEvent.id,
        AuditEvent.actor_id,
        AuditEvent.actor_name,
        AuditEvent.action,
        AuditEvent.target,
        AuditEvent.details,
        AuditEvent.created_at,
    )
    .where(AuditEvent.team_id == bindparam("team_id"))
    .order_by(AuditEvent.id.desc())
    .offset(bindparam("offset"))
    .limit(PAGE_SIZE + 1)
)


def clinic_zone() -> ZoneInfo:
    """The clinic's time zone: the log's dates and the exports' times are local to it."""
    return ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])


# The dates a filter takes: the calendar's ends overflow when shifted to UTC or by a day.
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9998, 12, 31)


def _day(value: str | None) -> date | None:
    try:
        day = date.fromisoformat(plain(value or ""))
    except ValueError:
        return None  # blank or not a date: no bound
    return day if FIRST_DAY <= day <= LAST_DAY else None


class LogFilter(NamedTuple):
    """Who did it, what, and when (the clinic's local dates, both ends included), for the
    activity page and its export alike; a blank part is no filter."""

    person: str = ""
    action: str = ""
    since: date | None = None
    until: date | None = None

    @classmethod
    def from_args(cls, args) -> "LogFilter":
        """From a query string: an unknown action or a date that is not one is no filter."""
        action = args.get("action", "")
        return cls(
            plain(args.get("person", ""))[:120],
            action if action in ACTIONS else "",
            _day(args.get("from")),
            _day(args.get("to")),
        )

    @property
    def narrowed(self) -> bool:
        return any(self)

    def url_values(self) -> dict[str, str]:
        """The query string that gives this filter again (for the pages' links)."""
        values = {
            "person": self.person,
            "action": self.action,
            "from": self.since.isoformat() if self.since else "",
            "to": self.until.isoformat() if self.until else "",
        }
        return {key: value for key, value in values.items() if value}

    def conditions(self, zone: ZoneInfo) -> list:
        def utc(day: date) -> datetime:
            local = datetime.combine(day, time.min, tzinfo=zone)
            return local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)

        found = []
        if self.person:
            found.append(AuditEvent.actor_name == self.person)
        if self.action:
            found.append(AuditEvent.action == self.action)
        if self.since:
            found.append(AuditEvent.created_at >= utc(self.since))
        if self.until:
            found.append(AuditEvent.created_at < utc(self.until + timedelta(days=1)))
        return found


EVERYTHING = LogFilter()


def page_of(team_id: int, page: int, f: LogFilter = EVERYTHING) -> tuple[list, bool]:
    """One page of the log as plain rows, newest first, and whether an older page exists."""
    statement = PAGE.where(*f.conditions(clinic_zone())) if f.narrowed else PAGE
    rows = plain_rows(statement, team_id=team_id, offset=(page - 1) * PAGE_SIZE)
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def describe(event) -> str:
    """How an event (an AuditEvent or a row of page_of) reads on the team page."""
    return describe_all([event])[0]


def describe_all(events) -> list[str]:
    """describe() for a page of events: each action's text and each role's label is translated
    once for the page, not once per entry."""
    texts: dict[str, str] = {}
    roles: dict[str, str] = {}
    names = shown_names()

    def text_of(action: str) -> str:
        if action not in texts:
            texts[action] = str(ACTIONS[action]) if action in ACTIONS else ""
        return texts[action]

    def role_of(role: str) -> str:
        if role not in roles:
            roles[role] = str(ROLE_LABELS.get(role, role)).lower()
        return roles[role]

    described = []
    for event in events:
        text = text_of(event.action)
        if not text:
            described.append(event.action)
            continue
        values = {"target": names.get(event.target, event.target), "old": "", "new": ""}
        for key, role in event.details.items():
            if key in ("old", "new"):
                values[key] = role_of(role)
        described.append(text % values)
    return described
