"""Reading teams and memberships: the queries every feature shares (no rules, no side effects)."""

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from portal.exceptions import NotFoundError
from portal.extensions import db
from portal.teams.models import PAID_ROLES, Membership, Team


def membership_of(user) -> Membership | None:
    """The user's membership, with its team and subscription (a user is in one team at most)."""
    if not getattr(user, "is_authenticated", False):
        return None
    return db.session.scalar(
        select(Membership)
        .options(joinedload(Membership.team).joinedload(Team.subscription))
        .where(Membership.user_id == user.id)
    )


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
    """Billable seats: the owner, admins and members (PAID_ROLES)."""
    return db.session.scalar(
        select(func.count(Membership.id)).where(
            Membership.team_id == team_id, Membership.role.in_(PAID_ROLES)
        )
    )


def seat_counts(team_id: int) -> tuple[int, int]:
    """The whole team's (paid seats, free seats), in one query."""
    paid = Membership.role.in_(PAID_ROLES)
    row = db.session.execute(
        select(
            func.count(Membership.id).filter(paid), func.count(Membership.id).filter(~paid)
        ).where(Membership.team_id == team_id)
    ).one()
    return row[0], row[1]


def find_member(team: Team, membership_id: int) -> Membership:
    """A membership of this team (404 for one of any other team)."""
    member = db.session.scalar(
        select(Membership).where(Membership.id == membership_id, Membership.team_id == team.id)
    )
    if member is None:
        raise NotFoundError(membership_id)
    return member
