"""Note templates: personal ones, and a Practice team's shared ones that admins curate."""

from datetime import datetime

from sqlalchemy import func, select

from portal import permissions
from portal.audit import service as audit
from portal.auth.models import User
from portal.exceptions import NotAllowedError, NotFoundError
from portal.extensions import db
from portal.team_templates.models import NoteTemplate
from portal.teams.models import Membership


def personal_templates(user: User) -> list[NoteTemplate]:
    return db.session.scalars(
        select(NoteTemplate).where(NoteTemplate.owner_id == user.id).order_by(NoteTemplate.title)
    ).all()


def team_templates(me: Membership | None, query: str = "") -> list[NoteTemplate]:
    """The team's templates the member may see, filtered by title or specialty."""
    if me is None or not permissions.can_see_team_templates(me, me.team):
        return []
    statement = select(NoteTemplate).where(NoteTemplate.team_id == me.team_id)
    words = query.strip().lower()
    if words:
        pattern = "%" + words.replace("\\", "").replace("%", "").replace("_", "") + "%"
        statement = statement.where(NoteTemplate.search_text.like(pattern))
    return db.session.scalars(statement.order_by(NoteTemplate.title).limit(200)).all()


def find_template(user: User, me: Membership | None, template_id: int) -> NoteTemplate:
    """A template the user may see: their own, or their team's; 404 for anything else."""
    template = db.session.get(NoteTemplate, template_id)
    if template is None:
        raise NotFoundError(template_id)
    if template.owner_id == user.id:
        return template
    if (
        template.team_id is not None
        and me is not None
        and template.team_id == me.team_id
        and permissions.can_see_team_templates(me, me.team)
    ):
        return template
    raise NotFoundError(template_id)


def can_edit(user: User, me: Membership | None, template: NoteTemplate) -> bool:
    if template.owner_id is not None:
        return template.owner_id == user.id
    return (
        me is not None
        and template.team_id == me.team_id
        and (permissions.can_edit_team_templates(me, me.team))
    )


def save_template(
    user: User,
    me: Membership | None,
    *,
    fields: dict,
    for_team: bool,
    now: datetime,
    template: NoteTemplate | None = None,
) -> NoteTemplate:
    """Create or edit a template; a team template only by the team's admins."""
    created = template is None
    if template is None:
        if for_team:
            if not permissions.can_edit_team_templates(me, me.team if me else None):
                raise NotAllowedError("only admins change team templates")
            template = NoteTemplate(team_id=me.team_id, created_by_id=user.id, created_at=now)
        else:
            template = NoteTemplate(owner_id=user.id, created_by_id=user.id, created_at=now)
        db.session.add(template)
    elif not can_edit(user, me, template):
        raise NotAllowedError("cannot edit this template")
    template.title = fields["title"]
    template.specialty = fields.get("specialty") or None
    template.body = fields["body"]
    template.search_text = searchable(template)
    template.updated_at = now
    db.session.flush()
    if template.team_id:
        action = "template.created" if created else "template.updated"
        audit.record(template.team_id, action, actor=user, now=now, target=template.title)
    return template


def delete_template(user: User, me: Membership | None, template: NoteTemplate, *, now) -> None:
    if not can_edit(user, me, template):
        raise NotAllowedError("cannot delete this template")
    if template.team_id:
        audit.record(
            template.team_id, "template.deleted", actor=user, now=now, target=template.title
        )
    db.session.delete(template)


def searchable(template: NoteTemplate) -> str:
    return f"{template.title} {template.specialty or ''}".lower()


def copy_to_personal(user: User, template: NoteTemplate, *, now: datetime) -> NoteTemplate:
    """A personal copy: it no longer follows the original."""
    copy = NoteTemplate(
        owner_id=user.id,
        created_by_id=user.id,
        title=template.title,
        specialty=template.specialty,
        body=template.body,
        search_text=template.search_text,
        created_at=now,
        updated_at=now,
    )
    db.session.add(copy)
    db.session.flush()
    return copy


def team_template_count(team_id: int) -> int:
    return db.session.scalar(
        select(func.count(NoteTemplate.id)).where(NoteTemplate.team_id == team_id)
    )


def on_team_deleted(team_id: int, *, now: datetime, keep_for: User | None = None) -> int:
    """The team's templates go with it; `keep_for` (the owner) first gets a personal copy of
    each. Returns how many were copied."""
    copied = 0
    if keep_for is not None:
        for template in db.session.scalars(
            select(NoteTemplate).where(NoteTemplate.team_id == team_id).order_by(NoteTemplate.id)
        ):
            copy_to_personal(keep_for, template, now=now)
            copied += 1
    db.session.execute(NoteTemplate.__table__.delete().where(NoteTemplate.team_id == team_id))
    return copied
