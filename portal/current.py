"""The signed-in user and their membership: loaded once per request, in one query.

Flask-Login's user loader reads the user with their membership (team, subscription) and keeps
the membership for the request; views pass it on to services and presenters, which never read
the request themselves.
"""

from functools import cache

from flask import g
from flask_login import current_user
from sqlalchemy import bindparam, select
from sqlalchemy.orm import contains_eager

from portal.auth.models import User
from portal.extensions import db
from portal.teams.models import Membership, Team
from portal.teams.queries import membership_of


@cache
def _user_query():
    """Built once per process: every request runs the same statement with its own user id."""
    # contains_eager fills membership.team.subscription from the same row: the identity map
    # holds objects only weakly, so selecting them as separate columns would not keep them.
    return (
        select(User, Membership)
        .outerjoin(Membership, Membership.user_id == User.id)
        .outerjoin(Membership.team)
        .outerjoin(Team.subscription)
        .options(contains_eager(Membership.team).contains_eager(Team.subscription))
        .where(User.id == bindparam("user_id"))
    )


def load_user(user_id: str) -> User | None:
    """Flask-Login's loader: the user and their membership (team, subscription) in one query.

    The id carries the session version, so sessions ended by logout or a password change fail.
    """
    ident, _, version = user_id.partition(":")
    if not ident.isdigit() or not version.isdigit():
        return None
    row = db.session.execute(_user_query(), {"user_id": int(ident)}).first()
    if row is None or row.User.session_version != int(version):
        return None
    g.membership = row.Membership
    return row.User


def membership() -> Membership | None:
    """The signed-in user's membership (None when signed out or in no team)."""
    if not current_user.is_authenticated:
        return None
    if "membership" not in g:  # a user logged in during this request
        g.membership = membership_of(current_user)
    return g.membership


def forget_membership() -> None:
    """After this request joined, created or left a team: read the membership again."""
    g.pop("membership", None)
