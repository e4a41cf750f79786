"""Teams and their members: the rules, as plain functions of the actor and the time."""

from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError

from portal import permissions
from portal.audit import service as audit
from portal.auth.models import User
from portal.billing import seats
from portal.billing.service import own_subscription
from portal.clinical_sessions import service as sessions
from portal.db import plain_rows
from portal.exceptions import ConflictError, NotAllowedError, NotFoundError
from portal.extensions import db
from portal.i18n import gettext as _
from portal.invitations.service import detach_invitations
from portal.links import public_url
from portal.outbox.service import email_user
from portal.ownership import service as ownership
from portal.team_templates import service as templates
from portal.teams.models import ROLES, Membership, Team
from portal.teams.queries import ROW_COLUMNS, MemberRow, lock_team, membership_of

NAME_MAX = 80


def clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not 1 <= len(name) <= NAME_MAX:
        raise ValueError(name)
    return name


# Owner first, then by name. Built once; run with plain_rows (the list may be long).
MEMBERS = (
    select(*ROW_COLUMNS)
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


def create_team(owner: User, name: str, *, now: datetime) -> Team:
    """Start a team on the owner's own Pro or Practice subscription; the owner is its admin."""
    subscription = own_subscription(owner)
    if subscription is None or not subscription.is_live:
        raise NotAllowedError("a team needs Pro or Practice")
    if membership_of(owner) is not None:
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
    audit.record(team.id, "team.created", actor=owner, now=now, target=team.name)
    seats.seats_changed(team, now=now)
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
    if old == "admin":
        ownership.on_admin_gone(team.id, target.user, actor=me.user, now=now)
    if was_paid != target.is_paid_seat:
        seats.seats_changed(team, now=now)
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
    _member_left(team.id, user, actor=me.user, now=now)
    _tell_removed(user, team, reason="removed", actor=me.user, now=now)
    if was_paid:
        seats.seats_changed(team, now=now)
    return user


def _tell_removed(user: User, team: Team, *, reason: str, actor: User, now: datetime) -> None:
    """Nobody loses access silently: what they lost, and that they are now on Free."""
    email_user(
        user,
        "removed_from_team",
        key=f"{reason}:{team.id}:{user.id}:{int(now.timestamp())}",
        now=now,
        reason=reason,
        team_name=team.name,
        actor_name=actor.name,
        practice=team.plan == "practice",
        link=public_url("plans.show"),
    )


def leave_team(me: Membership, *, now: datetime) -> None:
    """Leave the team (the owner deletes it instead)."""
    team = lock_team(me.team_id)
    if not permissions.can_leave(me):
        raise ConflictError(
            _("The owner cannot leave the team. Transfer ownership to another admin first.")
        )
    current = db.session.get(Membership, me.id)
    if current is None:
        return
    was_paid = current.is_paid_seat
    db.session.delete(current)
    audit.record(team.id, "member.left", actor=current.user, now=now, target=current.user.name)
    _member_left(team.id, current.user, actor=current.user, now=now)
    if was_paid:
        seats.seats_changed(team, now=now)


def delete_team(me: Membership, *, now: datetime, keep_templates: bool = True) -> int:
    """Delete the team: members fall back to Free and are told, its invitation links stop
    working; with keep_templates the owner gets a personal copy of each team template.
    Returns how many templates were copied."""
    team = lock_team(me.team_id)
    if not permissions.can_delete_team(me, team):
        raise NotAllowedError("only the owner deletes the team")
    detach_invitations(team, actor=me.user, now=now)
    ownership.on_team_deleted(team.id, actor=me.user, now=now)
    for membership in db.session.scalars(select(Membership).where(Membership.team_id == team.id)):
        if membership.user_id != me.user_id:
            _tell_removed(membership.user, team, reason="deleted", actor=me.user, now=now)
        db.session.delete(membership)
    audit.record(team.id, "team.deleted", actor=me.user, now=now, target=team.name)
    team_id, subscription = team.id, team.subscription
    db.session.flush()
    seats.on_team_deleted(team_id, subscription, now=now)  # the owner keeps one seat
    copied = templates.on_team_deleted(
        team_id, now=now, keep_for=me.user if keep_templates else None
    )
    sessions.on_team_deleted(team_id, now=now)
    db.session.delete(team)
    return copied


def _member_left(team_id: int, user: User, *, actor: User, now: datetime) -> None:
    sessions.on_member_left(team_id, user, now=now)  # their sessions stop being shared
    ownership.on_admin_gone(team_id, user, actor=actor, now=now)  # an offer to them lapses


def set_managed(team: Team, contact: str | None, *, now: datetime) -> None:
    """Operator command: a customer-success manager runs the team; admins cannot invite."""
    team.managed_contact = contact or None
    action = "team.managed" if contact else "team.unmanaged"
    audit.record(team.id, action, actor=None, now=now, target=contact or "")
