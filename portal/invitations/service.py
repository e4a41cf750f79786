"""Invitations: sent by admins, valid 30 days, resent and revoked, accepted by the invitee."""

import csv
import hashlib
import io
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import getaddresses

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from limits import parse as parse_limit
from sqlalchemy import String, bindparam, cast, func, select, true, update
from sqlalchemy.exc import IntegrityError

from portal import permissions
from portal.audit import service as audit
from portal.auth import service as auth
from portal.auth.models import User
from portal.billing import seats
from portal.db import plain_rows
from portal.exceptions import ConflictError, NotAllowedError, NotFoundError
from portal.extensions import db
from portal.i18n import gettext as _
from portal.invitations.models import Invitation, SupersededToken
from portal.links import public_url
from portal.outbox.models import OutboxMessage
from portal.outbox.service import EMAIL_GUARDS, email_user, queue_email
from portal.teams.models import ROLES, Membership, Team
from portal.teams.queries import lock_team, membership_of

MAX_ADDRESSES = 50
# Inviting a pending address again resends it, except within this time of the last send: a
# double submit (or ten parallel ones) sends one email.
RESEND_GRACE = timedelta(minutes=1)


class InvitationGoneError(Exception):
    """The invitation is no longer pending (accepted, declined, revoked or expired)."""


class WrongAccountError(Exception):
    """Signed in as someone other than the invited address."""


class AlreadyInTeamError(Exception):
    """The invitee belongs to a team already (one team per user)."""


class TooManyAddressesError(Exception):
    """More addresses in one request than MAX_ADDRESSES; nothing was sent."""

    def __init__(self, allowance: int):
        super().__init__(allowance)
        self.allowance = allowance


class InviteLimitError(TooManyAddressesError):
    """More new invitations than the admin's hourly or the team's daily budget has left."""


class TeamClosedError(Exception):
    """The team cannot take this member now: its subscription ended, or assistants need Practice."""


@dataclass(frozen=True)
class InviteResult:
    email: str
    # invited, resent, already_invited, member, invalid, unsupported, yourself, role, unknown_role
    outcome: str
    invitation: Invitation | None = None
    name: str = ""
    role: str = ""

    @property
    def will_send(self) -> bool:
        return self.outcome in ("invited", "resent")


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def expiry(now: datetime) -> datetime:
    """When an invitation sent (or resent) now stops working."""
    return now + timedelta(days=current_app.config["INVITATION_DAYS"])


def state(invitation: Invitation, now: datetime) -> str:
    """pending, expired, accepted, declined or revoked."""
    if invitation.status == "pending" and invitation.expires_at <= now:
        return "expired"
    return invitation.status


def days_left(invitation: Invitation, now: datetime) -> int:
    """Whole days left, rounded down: 36 hours is 1 day (the expiry date is shown beside it)."""
    return max(0, (invitation.expires_at - now) // timedelta(days=1))


@dataclass(frozen=True)
class Entry:
    """One address to invite as typed, with the name and role that came with it (if any)."""

    typed: str
    name: str = ""
    role: str | None = None  # None: the role chosen in the form


PLAIN_SEPARATORS = re.compile(r"[\s,]+")
LINES = re.compile(r"[;\r\n]+")


def parse_entries(text: str) -> list[Entry]:
    """What people paste from mail clients and spreadsheets: `Anna Jensen <anna@klinik.dk>;
    Bo <bo@klinik.dk>`, one address per line, commas, semicolons or spaces. Lines with names
    are read by the standard library's email.utils.getaddresses; plain lists are split on
    their separators. The first of case duplicates is kept."""
    entries = []
    for line in LINES.split(text or ""):
        if "<" in line or '"' in line:
            for name, address in getaddresses([line]):
                entries.append(Entry(address or line.strip(), " ".join(name.split())[:120]))
        else:
            entries.extend(Entry(part) for part in PLAIN_SEPARATORS.split(line) if part)
    return _first_of_each(entries)


def _first_of_each(entries: list[Entry]) -> list[Entry]:
    seen, result = set(), []
    for entry in entries:
        if entry.typed and entry.typed.lower() not in seen:
            seen.add(entry.typed.lower())
            result.append(entry)
    return result


class CsvError(ValueError):
    """The uploaded file is not a CSV of email,name,role rows; the message says why."""


CSV_MAX_BYTES = 64 * 1024


# A spreadsheet's role column, in English or Danish; any other word is an unknown role.
ROLE_WORDS = {
    "member": "member",
    "medlem": "member",
    "admin": "admin",
    "administrator": "admin",
    "assistant": "assistant",
    "assistent": "assistant",
}


def parse_csv(data: bytes) -> list[Entry]:
    """Rows of `email,name,role` (a header row is optional; name and role may be blank)."""
    if len(data) > CSV_MAX_BYTES:
        raise CsvError(_("The file is too large: at most %(max)d kB.", max=CSV_MAX_BYTES // 1024))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")  # Excel on Windows saves CSV this way
        except UnicodeDecodeError:
            raise CsvError(_("Save the file as CSV (UTF-8) and upload it again.")) from None
    # Excel's "CSV (Macintosh)" ends lines with CR alone; the reader wants one kind of line.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        sample = text[:2048]
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample.strip() else "excel"
        rows = list(csv.reader(io.StringIO(text), dialect))
    except csv.Error:
        try:
            rows = list(csv.reader(io.StringIO(text)))
        except csv.Error:
            raise CsvError(_("Save the file as CSV (UTF-8) and upload it again.")) from None
    entries = []
    for index, row in enumerate(rows):
        cells = [" ".join(cell.split()) for cell in row] + ["", "", ""]
        email, name, role = cells[:3]
        if index == 0 and email.lower() in ("email", "e-mail", "email address"):
            continue  # the header row
        if email or name:
            entries.append(
                Entry(email, name[:120], ROLE_WORDS.get(role.lower(), role.lower()) or None)
            )
    if not entries:
        raise CsvError(_("The file has no rows. Put one person per row: email,name,role."))
    return _first_of_each(entries)


def normalize_address(address: str) -> str | None:
    """The one canonical form of an invited address, or None if it is not a valid address.

    Letters outside ASCII (æble@klinik.dk) would need SMTPUTF8, which mail servers do not
    all offer: such addresses are refused here rather than failing at delivery."""
    if "=?" in address or len(address) > 254 or not address.isascii():
        return None
    try:
        valid = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return None
    return auth.normalize_email(valid.normalized)


def find_by_token(raw: str) -> tuple[Invitation | None, bool]:
    """The invitation behind a link, and whether that link was replaced by a resend."""
    if not raw or len(raw) > 200:
        return None, False
    token_hash = hash_token(raw)
    invitation = db.session.scalar(select(Invitation).where(Invitation.token_hash == token_hash))
    if invitation is not None:
        return invitation, False
    old = db.session.get(SupersededToken, token_hash)
    return (db.session.get(Invitation, old.invitation_id), True) if old else (None, False)


def _issue_token(invitation: Invitation) -> str:
    raw = secrets.token_urlsafe(32)  # 256 bits
    invitation.token_hash = hash_token(raw)
    return raw


def _send(
    invitation: Invitation,
    raw: str,
    *,
    inviter: User | None,
    now: datetime,
    template: str = "invitation",
) -> None:
    invitee = auth.find_user_by_email(invitation.email)
    queue_email(
        to=invitation.email,
        template=template,
        locale=invitee.locale if invitee and invitee.locale else invitation.team.locale,
        key=f"invitation:{invitation.id}:{invitation.token_hash[:16]}",  # email_key_sql()
        guard=("invitation", {"id": invitation.id, "token_hash": invitation.token_hash}),
        now=now,
        team=invitation.team,
        inviter=inviter,
        name=invitation.name or "",  # as the admin typed it ("Ida Test <ida@…>"), if at all
        role=invitation.role,
        expires_at=invitation.expires_at,
        link=public_url("invitations.show", token=raw),
    )


def invite_allowance(team: Team, inviter: User, *, now: datetime) -> int:
    """How many new invitations the admin may send now: what is left of their hourly and the
    team's daily budget (RATELIMIT_INVITE_ADMIN, _TEAM), counted from invitations created."""
    config = current_app.config

    def left(limit: str, *where) -> int:
        item = parse_limit(limit)
        since = now - timedelta(seconds=item.get_expiry())
        used = db.session.scalar(
            select(func.count())
            .select_from(Invitation)
            .where(Invitation.created_at > since, *where)
        )
        return item.amount - used

    return max(
        0,
        min(
            left(config["RATELIMIT_INVITE_ADMIN"], Invitation.invited_by_id == inviter.id),
            left(config["RATELIMIT_INVITE_TEAM"], Invitation.team_id == team.id),
        ),
    )


def invite_members(
    me: Membership, entries: list[Entry], role: str, *, now: datetime
) -> list[InviteResult]:
    """Invite each entry (with its own role, or `role`); report per address what happened.

    All or nothing: a batch larger than MAX_ADDRESSES or than the budget sends nothing. Only
    invitations created count against the budget (not invalid words, members or resends).
    """
    plan = plan_invitations(me, entries, role, now=now)
    results = []
    for planned in plan:
        if planned.outcome == "resent":
            resent = _resend(planned.invitation, inviter=me.user, now=now)
            results.append(replace(planned, invitation=resent))
        elif planned.outcome == "invited":
            results.append(_create(me.team, planned, inviter=me.user, now=now))
        else:
            results.append(planned)
    return results


def plan_invitations(
    me: Membership, entries: list[Entry], role: str, *, now: datetime
) -> list[InviteResult]:
    """What inviting these entries would do, address by address, without doing it (the CSV
    preview shows it; invite_members carries it out). Raises TooManyAddressesError or
    InviteLimitError for a batch that cannot go out at all."""
    if not permissions.can_invite(me, me.team):
        raise NotAllowedError("cannot invite")
    grantable = permissions.grantable_roles(me, me.team)
    if role not in grantable:
        raise NotAllowedError("role not allowed")
    # One team's invitations one at a time: the budget and the pending check see every row
    # that a parallel request created.
    team = lock_team(me.team_id)
    allowance = invite_allowance(team, me.user, now=now)
    if len(entries) > MAX_ADDRESSES:
        raise TooManyAddressesError(allowance)
    normalized = [(entry, normalize_address(entry.typed)) for entry in entries]
    valid = [address for _entry, address in normalized if address]
    members = set(
        db.session.scalars(
            select(User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.team_id == team.id, User.email.in_(valid))
        )
    )
    pending = {
        i.email: i
        for i in db.session.scalars(
            select(Invitation).where(
                Invitation.team_id == team.id,
                Invitation.status == "pending",
                Invitation.email.in_(valid),
            )
        )
    }
    plan = []
    for entry, address in normalized:
        wanted = entry.role or role
        if address is None:
            outcome = "unsupported" if not entry.typed.isascii() else "invalid"
            plan.append(InviteResult(entry.typed, outcome, name=entry.name, role=wanted))
            continue
        result = InviteResult(address, "invited", name=entry.name, role=wanted)
        if address == me.user.email:
            result = replace(result, outcome="yourself")
        elif address in members:
            result = replace(result, outcome="member")
        elif wanted not in ROLES:
            result = replace(result, outcome="unknown_role")
        elif wanted not in grantable:
            result = replace(result, outcome="role")
        elif address in pending and now - pending[address].sent_at < RESEND_GRACE:
            result = replace(result, outcome="already_invited", invitation=pending[address])
        elif address in pending:
            result = replace(result, outcome="resent", invitation=pending[address])
        plan.append(result)
    if sum(p.outcome == "invited" for p in plan) > allowance:
        raise InviteLimitError(allowance)
    return plan


def _create(team: Team, planned: InviteResult, *, inviter: User, now: datetime):
    address, role = planned.email, planned.role
    invitation = Invitation(
        team=team,
        email=address,
        name=planned.name or None,
        role=role,
        invited_by=inviter,
        created_at=now,
        sent_at=now,
        expires_at=expiry(now),
    )
    raw = _issue_token(invitation)
    try:
        with db.session.begin_nested():
            db.session.add(invitation)
    except IntegrityError:
        # A concurrent submit created it a moment ago: one invitation, one email.
        return replace(planned, outcome="already_invited")
    _send(invitation, raw, inviter=inviter, now=now)
    audit.record(team.id, "invitation.sent", actor=inviter, now=now, target=address, role=role)
    return replace(planned, invitation=invitation)


def _supersede(invitation: Invitation, *, now: datetime) -> str:
    """A new link for the invitation; the old one stops working and says a newer one exists."""
    db.session.add(
        SupersededToken(
            token_hash=invitation.token_hash, invitation_id=invitation.id, superseded_at=now
        )
    )
    return _issue_token(invitation)


def _resend(invitation: Invitation, *, inviter: User, now: datetime) -> Invitation:
    raw = _supersede(invitation, now=now)
    invitation.expires_at = expiry(now)
    invitation.sent_at = now
    db.session.flush()
    _send(invitation, raw, inviter=inviter, now=now)
    audit.record(
        invitation.team_id, "invitation.resent", actor=inviter, now=now, target=invitation.email
    )
    return invitation


def _pending_of(me: Membership, invitation_id: int) -> Invitation:
    invitation = db.session.scalar(
        select(Invitation)
        .where(Invitation.id == invitation_id, Invitation.team_id == me.team_id)
        .execution_options(populate_existing=True)  # as it is now, under the team lock
    )
    if invitation is None:
        raise NotFoundError(invitation_id)
    if invitation.status != "pending":
        raise ConflictError(_("This invitation was already answered or revoked."))
    return invitation


def resend_invitation(me: Membership, invitation_id: int, *, now: datetime) -> Invitation:
    """Send a fresh link with a fresh 30 days; the old link stops working."""
    if not permissions.can_invite(me, me.team):
        raise NotAllowedError("cannot resend")
    lock_team(me.team_id)  # a double click supersedes the token once, not twice
    return _resend(_pending_of(me, invitation_id), inviter=me.user, now=now)


def revoke_invitation(me: Membership, invitation_id: int, *, now: datetime) -> Invitation:
    if not permissions.can_manage_team(me, me.team):
        raise NotAllowedError("cannot revoke")
    lock_team(me.team_id)
    invitation = _pending_of(me, invitation_id)
    _revoke(invitation, actor=me.user, now=now)
    return invitation


def _revoke(invitation: Invitation, *, actor: User, now: datetime) -> None:
    """The link stops working; the team's log says who revoked it."""
    invitation.status, invitation.responded_at = "revoked", now
    audit.record(
        invitation.team_id, "invitation.revoked", actor=actor, now=now, target=invitation.email
    )


def send_reminders(*, now: datetime) -> int:
    """Scheduled: once per invitation, INVITATION_REMINDER_DAYS before it expires, remind the
    invitee with a fresh link (the expiry stays). Returns how many went out."""
    days = current_app.config["INVITATION_REMINDER_DAYS"]
    due = (
        select(Invitation)
        .where(
            Invitation.status == "pending",
            Invitation.reminded_at.is_(None),
            Invitation.team_id.is_not(None),
            Invitation.expires_at > now,
            Invitation.expires_at <= now + timedelta(days=days),
        )
        .order_by(Invitation.id)
        .with_for_update(skip_locked=True)
    )
    sent = 0
    for invitation in db.session.scalars(due):
        invitation.reminded_at = now
        raw = _supersede(invitation, now=now)
        db.session.flush()
        _send(
            invitation,
            raw,
            inviter=invitation.invited_by,
            now=now,
            template="invitation_reminder",
        )
        sent += 1
    return sent


def detach_invitations(team: Team, *, actor: User, now: datetime) -> None:
    """For a deleted team: pending invitations are revoked (audited); all leave the team."""
    for invitation in db.session.scalars(select(Invitation).where(Invitation.team_id == team.id)):
        if invitation.status == "pending":
            _revoke(invitation, actor=actor, now=now)
        invitation.team_id = None


def email_key_sql(invitation_id, token_hash):
    """As SQL: the outbox key of the email carrying an invitation's current link (_send's)."""
    return "invitation:" + cast(invitation_id, String) + ":" + func.substr(token_hash, 1, 16)


# The team page's pending invitations with the inviter's name and whether the email that
# carries the current link went out. Built once; run with plain_rows.
PENDING = (
    select(
        Invitation.id,
        Invitation.email,
        Invitation.role,
        Invitation.sent_at,
        Invitation.expires_at,
        User.name.label("invited_by"),
        OutboxMessage.status.label("delivery"),
    )
    .outerjoin(User, User.id == Invitation.invited_by_id)
    .outerjoin(
        OutboxMessage,
        OutboxMessage.idempotency_key == email_key_sql(Invitation.id, Invitation.token_hash),
    )
    .where(Invitation.team_id == bindparam("team_id"), Invitation.status == "pending")
    .order_by(Invitation.sent_at.desc(), Invitation.id.desc())
)


INVITATIONS_PAGE_SIZE = 10  # docs/decisions.md: the team page pages them 10 at a time
_PAGE = PENDING.limit(INVITATIONS_PAGE_SIZE).offset(bindparam("offset")).subquery()
_PENDING_COUNT = (
    select(
        func.count(Invitation.id).label("total"),
        func.count(Invitation.id)
        .filter(Invitation.expires_at <= bindparam("now"))
        .label("expired"),
    )
    .where(Invitation.team_id == bindparam("team_id"), Invitation.status == "pending")
    .subquery()
)
# The counts left-joined to the page: one statement, and the counts even past the last page.
PENDING_PAGE = (
    select(_PENDING_COUNT.c.total, _PENDING_COUNT.c.expired, *_PAGE.c)
    .select_from(_PENDING_COUNT.outerjoin(_PAGE, true()))
    .order_by(_PAGE.c.sent_at.desc(), _PAGE.c.id.desc())
)


def pending_page(team: Team, page: int, *, now: datetime) -> tuple[list, int, int]:
    """One page (INVITATIONS_PAGE_SIZE) of the pending invitations, how many are pending and
    how many of those have expired."""
    rows = plain_rows(
        PENDING_PAGE, team_id=team.id, now=now, offset=(page - 1) * INVITATIONS_PAGE_SIZE
    )
    return [row for row in rows if row.id is not None], rows[0].total, rows[0].expired


def _expired_of(me: Membership, now: datetime) -> list[Invitation]:
    return list(
        db.session.scalars(
            select(Invitation)
            .where(
                Invitation.team_id == me.team_id,
                Invitation.status == "pending",
                Invitation.expires_at <= now,
            )
            .order_by(Invitation.id)
            .execution_options(populate_existing=True)
        )
    )


def resend_expired(me: Membership, *, now: datetime) -> int:
    """Resend every expired invitation of the team: fresh links, fresh 30 days."""
    if not permissions.can_invite(me, me.team):
        raise NotAllowedError("cannot resend")
    lock_team(me.team_id)
    expired = _expired_of(me, now)
    for invitation in expired:
        _resend(invitation, inviter=me.user, now=now)
    return len(expired)


def revoke_expired(me: Membership, *, now: datetime) -> int:
    """Revoke every expired invitation of the team (their links already say they expired)."""
    if not permissions.can_manage_team(me, me.team):
        raise NotAllowedError("cannot revoke")
    lock_team(me.team_id)
    expired = _expired_of(me, now)
    for invitation in expired:
        _revoke(invitation, actor=me.user, now=now)
    return len(expired)


def invitation_case(invitation: Invitation, user, me: Membership | None) -> str:
    """What an invitation link offers this visitor (`me`: their membership, if any):

    signup (no account for the address yet), login (an account exists), other_account
    (signed in as someone else), same_team or other_team (already a member), or accept.
    """
    if not getattr(user, "is_authenticated", False):
        return "login" if auth.find_user_by_email(invitation.email) else "signup"
    if user.email != invitation.email:
        return "other_account"
    if me is not None:
        return "same_team" if me.team_id == invitation.team_id else "other_team"
    return "accept"


def _consume(invitation: Invitation, *, now: datetime, **values) -> None:
    """Use up a pending, unexpired invitation through this very link, once: of two parallel
    clicks (accept and decline, or a double submit) the second raises InvitationGoneError."""
    consumed = db.session.execute(
        update(Invitation)
        .where(
            Invitation.id == invitation.id,
            Invitation.status == "pending",
            Invitation.token_hash == invitation.token_hash,
            Invitation.expires_at > now,
        )
        .values(responded_at=now, **values)
    )
    if consumed.rowcount != 1:
        raise InvitationGoneError()


def accept_invitation(invitation: Invitation, user: User, *, now: datetime) -> Membership:
    """Join the team: consume the invitation and add the membership in one transaction."""
    case = invitation_case(invitation, user, membership_of(user))
    if case == "other_account":
        raise WrongAccountError()
    if case in ("same_team", "other_team"):
        raise AlreadyInTeamError()
    team = lock_team(invitation.team_id)
    if not team.is_active or (invitation.role == "assistant" and not team.is_practice):
        raise TeamClosedError()
    _consume(invitation, now=now, status="accepted", accepted_by_id=user.id)
    membership = Membership(team_id=team.id, user_id=user.id, role=invitation.role, created_at=now)
    db.session.add(membership)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise AlreadyInTeamError() from None
    membership.team = team
    if user.email_verified_at is None:
        user.email_verified_at = now  # the link was delivered to this address
    audit.record(
        team.id, "invitation.accepted", actor=user, now=now, target=user.email, role=invitation.role
    )
    if (told := _who_to_tell(invitation)) is not None:
        email_user(
            told,
            "invitation_accepted",
            key=f"accepted:{invitation.id}",
            now=now,
            member=user,
            team=team,
            link=public_url("teams.show"),
        )
    seats.on_joined(membership, user, now=now)  # their own paid plan is cancelled, refunded
    if membership.is_paid_seat:
        seats.seats_changed(team, now=now)
    return membership


def decline_invitation(invitation: Invitation, *, now: datetime, user: User | None) -> None:
    """The invitee says no: the log names them by the invited address, the inviter is told."""
    _consume(invitation, now=now, status="declined")
    audit.record(
        invitation.team_id,
        "invitation.declined",
        actor=user,
        actor_name=invitation.email,
        now=now,
        target=invitation.email,
    )
    if (told := _who_to_tell(invitation)) is not None:
        email_user(
            told,
            "invitation_declined",
            key=f"declined:{invitation.id}",
            now=now,
            email=invitation.email,
            team=invitation.team,
            link=public_url("teams.show"),
        )


def _who_to_tell(invitation: Invitation) -> User | None:
    """Who hears that an invitation was answered: the admin who sent it while they are still
    an admin of the team (a removed or demoted one is not told who joined), else the owner."""
    team, inviter = invitation.team, invitation.invited_by
    if inviter is not None and permissions.can_manage_team(membership_of(inviter), team):
        return inviter
    return team.owner


def sign_up_and_accept(
    invitation: Invitation, *, name: str, password: str, locale: str, now: datetime
) -> tuple[User, Membership]:
    """Create the invitee's account (email from the invitation, counted as verified, in the
    language they signed up in), then join."""
    try:
        user = auth.create_user(
            name=name,
            email=invitation.email,
            password=password,
            locale=locale,
            now=now,
            verified=True,
        )
    except auth.EmailTakenError:  # perhaps a parallel sign-up through the same link
        raise ConflictError(
            _("An account already exists for this address. Log in to accept.")
        ) from None
    return user, accept_invitation(invitation, user, now=now)


def _still_wanted(guard: dict) -> bool:
    """An invitation email is sent only while that link is still the pending one."""
    invitation = db.session.get(Invitation, guard["id"])
    return (
        invitation is not None
        and invitation.status == "pending"
        and invitation.token_hash == guard["token_hash"]
    )


EMAIL_GUARDS["invitation"] = _still_wanted
