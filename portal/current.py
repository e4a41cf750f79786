"""The signed-in user, their session record and their membership: loaded once per request,
in one query.

Flask-Login's user loader reads the user with the session record the cookie names and their
membership (team, subscription) and keeps the record and the membership for the request; views
pass them on to services and presenters, which never read the request themselves.
"""

from functools import cache

from flask import g, session
from flask_login import current_user
from sqlalchemy import bindparam, select
from sqlalchemy.orm import contains_eager

from portal.auth.models import User
from portal.devices.models import UserSession
from portal.devices.service import SessionRef, hash_token, ref
from portal.extensions import db
from portal.teams.models import Membership, Team
from portal.teams.queries import membership_of


@cache
def _user_query():
    """Built once per process: every request runs the same statement with its own user id."""
    # contains_eager fills membership.team.subscription from the same row: the identity map
    # holds objects only weakly, so selecting them as separate columns would not keep them.
    return (
        select(User, UserSession, Membership)
        .join(
            UserSession,
            (UserSession.user_id == User.id) & (UserSession.token_hash == bindparam("token")),
        )
        .outerjoin(Membership, Membership.user_id == User.id)
        .outerjoin(Membership.team)
        .outerjoin(Team.subscription)
        .options(contains_eager(Membership.team).contains_eager(Team.subscription))
        .where(User.id == bindparam("user_id"))
    )


def load_user(user_id: str) -> User | None:
    """Flask-Login's loader: the user, their session record and their membership (team,
    subscription) in one query.

    The cookie's random session id must name a live record of this user: a session ended on
    any device (its row deleted) is signed out at its next request. The id also carries the
    session version, which "end every session" raises as well.
    """
    ident, _, version = user_id.partition(":")
    token = session.get("sid")
    if not ident.isdigit() or not version.isdigit() or not isinstance(token, str):
        return None
    row = db.session.execute(
        _user_query(), {"user_id": int(ident), "token": hash_token(token)}
    ).first()
    if row is None or row.User.session_version != int(version):
        return None
    g.membership = row.Membership
    g.user_session = ref(row.UserSession)
    return row.User


def user_session() -> SessionRef | None:
    """This request's session record, its id and last-seen time (None when signed out)."""
    if not current_user.is_authenticated:
        return None
    return g.get("user_session")


def set_user_session(record: UserSession) -> None:
    """A user signed in during this request: this is their session from now on."""
    g.user_session = ref(record)


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
