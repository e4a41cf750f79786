"""The user's own data: a JSON export (GDPR art. 20) and deleting the account (art. 17).

Deletion keeps the `users` row, emptied, because invoices (our subscription rows, Stripe's
invoices) and the team activity log point at it; what is kept and why is on the delete page and
in docs/security.md.
"""

from datetime import datetime

from sqlalchemy import delete, or_, select, update

from portal.audit.models import AuditEvent
from portal.audit.service import DELETED_NAME
from portal.auth import service as auth
from portal.auth.models import User
from portal.billing import service as billing
from portal.billing.models import Subscription
from portal.clinical_sessions.models import ClinicalSession
from portal.exceptions import DomainError
from portal.extensions import db
from portal.i18n import gettext as _
from portal.invitations.models import Invitation
from portal.links import public_url
from portal.outbox.service import queue_email
from portal.referrals.models import Referral
from portal.team_templates.models import NoteTemplate
from portal.teams import service as teams
from portal.teams.models import Membership, Team
from portal.teams.queries import membership_of
from portal.twofa import service as twofa

EXPORT_VERSION = 1


def placeholder_email(user: User) -> str:
    """Unique, and undeliverable (.invalid is reserved, RFC 2606)."""
    return f"deleted-{user.id}@invalid"


class DeletionRefused(DomainError):
    """The account cannot be deleted now; `field` names the form field the reason belongs to
    (None for the page as a whole)."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


class OwnsTeamError(DeletionRefused):
    """The user owns a team: they transfer ownership or delete the team first."""


# -- export --
def _time(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


def export(user: User, *, now: datetime) -> dict:
    """Everything the portal holds that the user gave it or that describes them."""
    memberships = db.session.execute(
        select(Membership.role, Membership.created_at, Team.name, Team.owner_id)
        .join(Team, Team.id == Membership.team_id)
        .where(Membership.user_id == user.id)
    ).all()
    templates = db.session.scalars(
        select(NoteTemplate).where(NoteTemplate.owner_id == user.id).order_by(NoteTemplate.id)
    ).all()
    sessions = db.session.execute(
        select(ClinicalSession, Team.name)
        .outerjoin(Team, Team.id == ClinicalSession.shared_team_id)
        .where(ClinicalSession.owner_id == user.id)
        .order_by(ClinicalSession.id)
    ).all()
    referred = db.session.execute(
        select(Referral.created_at, User.name)
        .join(User, User.id == Referral.referred_id)
        .where(Referral.referrer_id == user.id)
        .order_by(Referral.id)
    ).all()
    referred_by = db.session.scalar(
        select(Referral.created_at).where(Referral.referred_id == user.id)
    )
    subscriptions = db.session.scalars(
        select(Subscription).where(Subscription.user_id == user.id).order_by(Subscription.id)
    ).all()
    return {
        "format": "clinic-teams-personal-data",
        "version": EXPORT_VERSION,
        "exported_at": _time(now),
        "profile": {
            "name": user.name,
            "email": user.email,
            "language": user.locale,
            "email_verified_at": _time(user.email_verified_at),
            "created_at": _time(user.created_at),
            "last_seen_at": _time(user.last_seen_at),
            "trial_used_at": _time(user.trial_used_at),
            "personal_link_code": user.referral_code,
        },
        "memberships": [
            {
                "team": row.name,
                "role": row.role,
                "owner": row.owner_id == user.id,
                "joined_at": _time(row.created_at),
            }
            for row in memberships
        ],
        "subscriptions": [
            {
                "plan": s.plan,
                "interval": s.interval,
                "status": s.status,
                "seats": s.quantity,
                "current_period_end": _time(s.current_period_end),
                "created_at": _time(s.created_at),
            }
            for s in subscriptions
        ],
        "templates": [
            {
                "title": t.title,
                "specialty": t.specialty,
                "body": t.body,
                "created_at": _time(t.created_at),
                "updated_at": _time(t.updated_at),
            }
            for t in templates
        ],
        "sessions": [
            {
                "title": s.title,
                "date": s.date.isoformat(),
                "note": s.note,
                "shared_with_team": team_name,
                "created_at": _time(s.created_at),
                "updated_at": _time(s.updated_at),
            }
            for s, team_name in sessions
        ],
        "referrals": {
            "signed_up_through_your_link": [
                {"name": row.name, "signed_up_at": _time(row.created_at)} for row in referred
            ],
            "you_signed_up_through_a_link_at": _time(referred_by),
        },
    }


# -- deletion --
def owned_team(user: User) -> Team | None:
    return db.session.scalar(select(Team).where(Team.owner_id == user.id))


def check_deletion(user: User) -> None:
    """Refusals that do not depend on what the form says (shown before the form)."""
    team = owned_team(user)
    if team is not None:
        raise OwnsTeamError(
            _(
                "You own the team %(team)s. Transfer ownership to another admin, or delete the"
                " team, before you delete your account.",
                team=team.name,
            )
        )


def delete_account(user: User, *, password: str, code: str | None = None, now: datetime) -> None:
    """Delete the account: leave the team (seats follow), cancel the own subscription, remove
    the personal data, end every session and confirm to the old address. DeletionRefused says
    why not (OwnsTeamError; a wrong password, field "password"; with two-step sign-in on, a
    missing or wrong code from the app or a recovery code, field "code")."""
    check_deletion(user)
    if auth.authenticate(user.email, password) is None:
        raise DeletionRefused(_("This is not your current password."), field="password")
    # After the password, so that a mistyped password does not use up the code.
    if twofa.is_enabled(user) and not twofa.verify(user, code or "", now=now):
        raise DeletionRefused(_("That code is not right."), field="code")
    address, name, locale = user.email, user.name, user.locale
    own = billing.own_subscription(user)
    me = membership_of(user)
    if me is not None:
        teams.leave_team(me, now=now)  # seats, the activity log, shared sessions, offers
    if own is not None:
        billing.cancel_for_deleted_account(own, now=now)
    _remove_personal_data(user, address=address, name=name, now=now)
    queue_email(
        to=address,
        template="account_deleted",
        locale=locale,
        key=f"account-deleted:{user.id}",
        now=now,
        name=name,
        cancelled_plan=billing.PLAN_NAMES[own.plan] if own is not None else None,
        signup_link=public_url("auth.signup"),
    )


def _remove_personal_data(user: User, *, address: str, name: str, now: datetime) -> None:
    db.session.execute(delete(NoteTemplate).where(NoteTemplate.owner_id == user.id))
    db.session.execute(delete(ClinicalSession).where(ClinicalSession.owner_id == user.id))
    db.session.execute(
        delete(Referral).where(
            or_(Referral.referrer_id == user.id, Referral.referred_id == user.id)
        )
    )
    # Invitations the user accepted keep their row (the team's history), not the address.
    db.session.execute(
        update(Invitation)
        .where(Invitation.accepted_by_id == user.id)
        .values(email=placeholder_email(user), name=None)
    )
    _anonymise_audit(user, address=address, name=name)
    twofa.remove(user)
    user.name = DELETED_NAME
    user.email = placeholder_email(user)
    user.password_hash = "!deleted"  # not an argon2 hash: no password matches it
    user.locale = None
    user.referral_code = None
    user.email_verified_at = None
    user.last_seen_at = None
    user.trial_used_at = None
    user.email_changed_at = user.email_undone_at = None
    user.deleted_at = now
    auth.end_sessions(user)
    db.session.flush()


def _anonymise_audit(user: User, *, address: str, name: str) -> None:
    """The entries stay (the teams' record of who did what); the person reads "deleted user".
    Entries naming them by name are changed only in the teams whose log has them as an actor
    (a namesake elsewhere keeps their name)."""
    db.session.execute(
        update(AuditEvent)
        .where(or_(AuditEvent.actor_id == user.id, AuditEvent.actor_name == address))
        .values(actor_name=DELETED_NAME)
    )
    db.session.execute(
        update(AuditEvent).where(AuditEvent.target == address).values(target=DELETED_NAME)
    )
    their_teams = select(AuditEvent.team_id).where(AuditEvent.actor_id == user.id).distinct()
    db.session.execute(
        update(AuditEvent)
        .where(AuditEvent.target == name, AuditEvent.team_id.in_(their_teams))
        .values(target=DELETED_NAME)
    )
