"""Teams and their members: the rules, as plain functions of the actor and the time."""

from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError

from portal import permissions
from portal.audit import service as audit
from portal.auth.models import User
from portal.billing.service import own_subscription
from portal.db import plain_rows
from portal.extensions import db
from portal.i18n import gettext as _
from portal.teams.models import ROLES, Membership, Team
from portal.teams.queries import MemberRow

NAME_MAX = 80


class TeamError(Exception):
    """A team rule refused the change; the message says why, for the user."""


class NotAllowedError(TeamError):
    """The actor may not do this (403)."""


class ConflictError(TeamError):
    """The change conflicts with the team's current state (409)."""


class NotFoundError(TeamError):
    """No such member or invitation in the actor's team (404, whoever else it belongs to)."""


def clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not 1 <= len(name) <= NAME_MAX:
        raise ValueError(name)
    return name


def lock_team(team_id: int) -> Team:
    """Load the team row FOR UPDATE: seat counts and role rules are checked under this lock."""
    team = db.session.scalar(
        select(Team)
        .where(Team.id == team_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if team is None:
        raise NotFoundError(team_id)
    return team


def paid_seats(team_id: int) -> int:
    """Billable seats: the owner, admins and members; assistants are free."""
    return db.session.scalar(
        select(func.count(Membership.id)).where(
            Membership.team_id == team_id, Membership.role != "assistant"
        )
    )


# Owner first, then by name. Built once; run with plain_rows (the list may be long).
MEMBERS = (
    select(
        Membership.id,
        Membership.team_id,
        Membership.user_id,
        Membership.role,
        Membership.created_at,
        User.name,
        User.email,
    )
    .join(User, User.id == Membership.user_id)
    .join(Team, Team.id == Membership.team_id)
    .where(Membership.team_id == bindparam("team_id"))
    .order_by(Membership.user_id != Team.owner_id, func.lower(User.name), Membership.id)
)
ONE_MEMBER = MEMBERS.where(Membership.id == bindparam("only"))


def members_of(team: Team, *, only: int | None = None) -> list[MemberRow]:
    """The team's members (or the one with id `only`), owner first, then by name."""
    if only is None:
        return plain_rows(MEMBERS, MemberRow, team_id=team.id)
    return plain_rows(ONE_MEMBER, MemberRow, team_id=team.id, only=only)


def find_member(team: Team, membership_id: int) -> Membership:
    member = db.session.scalar(
        select(Membership).where(Membership.id == membership_id, Membership.team_id == team.id)
    )
    if member is None:
        raise NotFoundError(membership_id)
    return member


def seats_changed(team: Team, *, now: datetime) -> None:
    """The one place every seat change passes through: bump the version, sync billing."""
    team.seat_version += 1
    for hook in SEAT_HOOKS:
        hook(team, now=now)


# Billing registers the Stripe quantity sync here (portal.billing.seats).
SEAT_HOOKS: list = []


def create_team(owner: User, name: str, *, now: datetime) -> Team:
    """Start a team on the owner's own Pro or Practice subscription; the owner is its admin."""
    subscription = own_subscription(owner)
    if subscription is None or not subscription.is_live:
        raise NotAllowedError("a team needs Pro or Practice")
    if permissions.membership_of(owner) is not None:
        raise ConflictError(_("You already belong to a team. Leave it before creating another."))
    team = Team(
        name=clean_name(name),
        locale=owner.locale or "en",
        owner=owner,
        subscription=subscription,
        created_at=now,
    )
    db.session.add(team)
    db.session.flush()
    db.session.add(Membership(team=team, user=owner, role="admin", created_at=now))
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise ConflictError(
            _("You already belong to a team. Leave it before creating another.")
        ) from None
    permissions.forget_membership(owner)  # it was read (as none) a moment ago
    audit.record(team.id, "team.created", actor=owner, now=now, target=team.name)
    seats_changed(team, now=now)
    return team


def rename_team(team: Team, name: str, locale: str, *, actor: User, now: datetime) -> None:
    name = clean_name(name)
    if name != team.name:
        team.name = name
        audit.record(team.id, "team.renamed", actor=actor, now=now, target=name)
    if locale != team.locale:
        team.locale = locale
        audit.record(team.id, "team.language", actor=actor, now=now, target=locale)


def _locked_target(membership_id: int, me: Membership) -> tuple[Team, Membership]:
    """Lock the actor's team, then load the target membership inside that team (404 otherwise)."""
    team = lock_team(me.team_id)
    target = db.session.scalar(
        select(Membership)
        .where(Membership.id == membership_id, Membership.team_id == team.id)
        .execution_options(populate_existing=True)
    )
    if target is None:
        raise NotFoundError(membership_id)
    return team, target


def change_role(me: Membership, membership_id: int, role: str, *, now: datetime) -> Membership:
    """Give a member another role; paid seats follow (assistants are free)."""
    team, target = _locked_target(membership_id, me)
    if not permissions.can_change_role(me, target):
        raise NotAllowedError("cannot change this role")
    if role not in ROLES or role not in permissions.grantable_roles(me, team):
        raise NotAllowedError("role not allowed")
    if target.role == role:
        return target
    was_paid = target.is_paid_seat
    old = target.role
    target.role = role
    audit.record(
        team.id, "member.role", actor=me.user, now=now, target=target.user.name, old=old, new=role
    )
    if was_paid != target.is_paid_seat:
        seats_changed(team, now=now)
    return target


def remove_member(me: Membership, membership_id: int, *, now: datetime) -> User:
    """Take someone out of the team; they fall back to Free."""
    team, target = _locked_target(membership_id, me)
    if not permissions.can_remove(me, target):
        raise NotAllowedError("cannot remove this member")
    user = target.user
    was_paid = target.is_paid_seat
    db.session.delete(target)
    audit.record(team.id, "member.removed", actor=me.user, now=now, target=user.name)
    _member_left(team.id, user, now=now)
    if was_paid:
        seats_changed(team, now=now)
    return user


def leave_team(me: Membership, *, now: datetime) -> None:
    """Leave the team (the owner deletes it instead)."""
    team = lock_team(me.team_id)
    if team.owner_id == me.user_id:
        raise ConflictError(_("The owner cannot leave the team. Delete the team instead."))
    current = db.session.get(Membership, me.id)
    if current is None:
        return
    was_paid = current.is_paid_seat
    db.session.delete(current)
    audit.record(team.id, "member.left", actor=current.user, now=now, target=current.user.name)
    _member_left(team.id, current.user, now=now)
    if was_paid:
        seats_changed(team, now=now)


def delete_team(me: Membership, *, now: datetime) -> None:
    """Delete the team: members fall back to Free, its invitation links stop working."""
    from portal.invitations.service import detach_invitations

    team = lock_team(me.team_id)
    if team.owner_id != me.user_id:
        raise NotAllowedError("only the owner deletes the team")
    detach_invitations(team, actor=me.user, now=now)
    for membership in db.session.scalars(select(Membership).where(Membership.team_id == team.id)):
        db.session.delete(membership)
    audit.record(team.id, "team.deleted", actor=me.user, now=now, target=team.name)
    team_id, subscription = team.id, team.subscription
    db.session.flush()
    for hook in DELETE_HOOKS:
        hook(team_id, subscription, now=now)
    db.session.delete(team)


# Billing registers "the owner keeps the subscription at one seat" here.
DELETE_HOOKS: list = []
# Features that give members access through the team register here (sessions stop being shared).
LEFT_HOOKS: list = []


def _member_left(team_id: int, user: User, *, now: datetime) -> None:
    for hook in LEFT_HOOKS:
        hook(team_id, user, now=now)


def set_managed(team: Team, contact: str | None, *, now: datetime) -> None:
    """Operator command: a customer-success manager runs the team; admins cannot invite."""
    team.managed_contact = contact or None
    action = "team.managed" if contact else "team.unmanaged"
    audit.record(team.id, action, actor=None, now=now, target=contact or "")
