"""Clinical sessions: private to their owner, shared with the team (view only) on Practice."""

from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import joinedload

from portal import permissions
from portal.audit import service as audit
from portal.auth.models import User
from portal.clinical_sessions.models import ClinicalSession
from portal.exceptions import NotAllowedError, NotFoundError
from portal.extensions import db
from portal.team_templates.models import NoteTemplate
from portal.teams.models import Membership


def own_sessions(user: User) -> list[ClinicalSession]:
    return db.session.scalars(
        select(ClinicalSession)
        .where(ClinicalSession.owner_id == user.id)
        .order_by(ClinicalSession.date.desc(), ClinicalSession.id.desc())
    ).all()


def shared_with_me(user: User, me: Membership | None) -> list[ClinicalSession]:
    """Teammates' sessions shared with my team, while sharing is on and both are in the team."""
    if me is None or not permissions.sharing_on(me.team):
        return []
    return db.session.scalars(
        select(ClinicalSession)
        .options(joinedload(ClinicalSession.owner))
        .join(Membership, Membership.user_id == ClinicalSession.owner_id)
        .where(
            ClinicalSession.shared_team_id == me.team_id,
            Membership.team_id == me.team_id,
            ClinicalSession.owner_id != user.id,
        )
        .order_by(ClinicalSession.date.desc(), ClinicalSession.id.desc())
    ).all()


def find_session(user: User, me: Membership | None, session_id: int, *, now: datetime):
    """A session the user may open; a teammate's view is written to the team's audit log."""
    session = db.session.get(ClinicalSession, session_id)
    if session is None:
        raise NotFoundError(session_id)
    if session.owner_id == user.id:
        return session
    if session in shared_with_me(user, me):
        audit.record(
            me.team_id,
            "session.viewed",
            actor=user,
            now=now,
            target=f"{session.owner.name}: {session.title}",
            session_id=session.id,
        )
        return session
    raise NotFoundError(session_id)


def own_session(user: User, session_id: int) -> ClinicalSession:
    session = db.session.get(ClinicalSession, session_id)
    if session is None or session.owner_id != user.id:
        raise NotFoundError(session_id)
    return session


def create_session(
    user: User,
    me: Membership | None,
    *,
    title: str,
    on: date,
    note: str,
    template: NoteTemplate | None,
    now: datetime,
) -> ClinicalSession:
    """Start a session, blank or from a template (its sections become the note)."""
    if not permissions.can_create_sessions(me):
        raise NotAllowedError("assistants do not create sessions")
    session = ClinicalSession(
        owner_id=user.id,
        title=title,
        date=on,
        note=note or (template.body if template else ""),
        created_at=now,
        updated_at=now,
    )
    db.session.add(session)
    db.session.flush()
    return session


def update_session(session: ClinicalSession, *, title: str, on: date, note: str, now) -> None:
    session.title, session.date, session.note, session.updated_at = title, on, note, now


def share_session(me: Membership | None, session: ClinicalSession, *, now: datetime) -> None:
    if not permissions.can_share_session(me, session):
        raise NotAllowedError("sharing is not available")
    session.shared_team_id = me.team_id
    session.shared_at = now
    audit.record(me.team_id, "session.shared", actor=me.user, now=now, target=session.title)


def unshare_session(me: Membership | None, session: ClinicalSession, *, now: datetime) -> None:
    team_id = session.shared_team_id
    session.shared_team_id = None
    session.shared_at = None
    if team_id:
        audit.record(
            team_id, "session.unshared", actor=session.owner, now=now, target=session.title
        )


def set_sharing(me: Membership, enabled: bool, *, now: datetime) -> None:
    """Turn session sharing on or off for the whole team (off hides every shared session)."""
    team = me.team
    if not permissions.can_toggle_sharing(me, team):
        raise NotAllowedError("cannot change sharing")
    if team.sharing_enabled != enabled:
        team.sharing_enabled = enabled
        audit.record(
            team.id, "team.sharing_on" if enabled else "team.sharing_off", actor=me.user, now=now
        )


def on_member_left(team_id: int, user: User, *, now: datetime) -> None:
    """Someone who leaves stops sharing: rejoining later must not re-expose their notes."""
    for session in db.session.scalars(
        select(ClinicalSession).where(
            ClinicalSession.owner_id == user.id, ClinicalSession.shared_team_id == team_id
        )
    ):
        session.shared_team_id = None
        session.shared_at = None
        audit.record(team_id, "session.unshared", actor=user, now=now, target=session.title)


def on_team_deleted(team_id: int, *, now: datetime) -> None:
    db.session.execute(
        update(ClinicalSession)
        .where(ClinicalSession.shared_team_id == team_id)
        .values(shared_team_id=None, shared_at=None)
    )
