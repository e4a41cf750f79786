"""Session records: start, touch, end one, end the others, end all, and forget expired ones.

A session is alive while its row exists: the user loader (portal/current.py) reads the row
named by the cookie on every request, so ending a session in one web process signs it out in
all of them. Rules take `now`; the caller commits.
"""

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import NamedTuple

from flask import current_app
from sqlalchemy import delete, or_, select, update

from portal.devices.models import UserSession
from portal.extensions import db

# "Last seen" to five minutes: at most one small write per session every five minutes.
TOUCH_EVERY = timedelta(minutes=5)
USER_AGENT_MAX = 255
IP_MAX = 45


class SessionRef(NamedTuple):
    """This request's session as plain values: a commit earlier in the request (which expires
    ORM objects) or the row's deletion by another device cannot make reading it fail."""

    id: int
    last_seen_at: datetime


def ref(record: UserSession) -> SessionRef:
    return SessionRef(record.id, record.last_seen_at)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(user_id: int, *, user_agent: str | None, ip: str | None, now: datetime):
    """A new session record: (record, the random id for the cookie, never stored)."""
    token = secrets.token_urlsafe(32)
    record = UserSession(
        user_id=user_id,
        token_hash=hash_token(token),
        created_at=now,
        last_seen_at=now,
        user_agent=(user_agent or "")[:USER_AGENT_MAX],
        ip=(ip or None) and ip[:IP_MAX],
    )
    db.session.add(record)
    db.session.flush()
    return record, token


def rotate(record: UserSession | SessionRef) -> str:
    """Give the session a new random id (after a password change): the old cookie stops
    working, the device stays signed in and keeps its place in the list. (A row another device
    ended meanwhile stays ended: the new id then names nothing.)"""
    token = secrets.token_urlsafe(32)
    db.session.execute(
        update(UserSession).where(UserSession.id == record.id).values(token_hash=hash_token(token))
    )
    return token


def touch(record: UserSession | SessionRef, *, now: datetime) -> bool:
    """Note that the session was used, at most once per TOUCH_EVERY; True if it wrote."""
    if now - record.last_seen_at < TOUCH_EVERY:
        return False
    db.session.execute(
        update(UserSession).where(UserSession.id == record.id).values(last_seen_at=now)
    )
    return True


def own_session(user_id: int, session_id: int) -> UserSession | None:
    """The user's own session record with this id (None for anyone else's, or an ended one)."""
    return db.session.scalar(
        select(UserSession).where(UserSession.id == session_id, UserSession.user_id == user_id)
    )


def end(record: UserSession | SessionRef) -> None:
    db.session.execute(delete(UserSession).where(UserSession.id == record.id))


def end_all(user_id: int) -> int:
    """End every session of the user; the number ended."""
    return db.session.execute(delete(UserSession).where(UserSession.user_id == user_id)).rowcount


def end_others(user_id: int, *, keep: int) -> int:
    """End every session of the user but `keep` (a record id); the number ended."""
    return db.session.execute(
        delete(UserSession).where(UserSession.user_id == user_id, UserSession.id != keep)
    ).rowcount


def _cutoffs(now: datetime) -> tuple[datetime, datetime]:
    """Sessions seen before the first or started before the second have timed out (the
    cookie's idle and absolute limits, plus the touch resolution for "seen")."""
    config = current_app.config
    idle = now - timedelta(seconds=config["SESSION_IDLE_SECONDS"]) - TOUCH_EVERY
    absolute = now - timedelta(seconds=config["PERMANENT_SESSION_LIFETIME"])
    return idle, absolute


def active_of(user_id: int, *, now: datetime) -> list[UserSession]:
    """The user's sessions that have not timed out, the most recently used first."""
    idle, absolute = _cutoffs(now)
    return list(
        db.session.scalars(
            select(UserSession)
            .where(
                UserSession.user_id == user_id,
                UserSession.last_seen_at >= idle,
                UserSession.created_at >= absolute,
            )
            .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
        )
    )


def delete_expired(*, now: datetime, user_id: int | None = None) -> int:
    """Forget timed-out sessions (all users', or one user's); the number deleted."""
    idle, absolute = _cutoffs(now)
    statement = delete(UserSession).where(
        or_(UserSession.last_seen_at < idle, UserSession.created_at < absolute)
    )
    if user_id is not None:
        statement = statement.where(UserSession.user_id == user_id)
    return db.session.execute(statement).rowcount
