"""Who may do what: one predicate per rule, used by views (to enforce) and templates (to hide).

Every predicate takes the acting user's membership (or None) and what it acts on, and answers
from those alone: no database, no request, no `g`. Services call the same predicates before they
change anything, so a rule is written once.
"""

from portal.teams.models import Membership, Team


def is_admin(me: Membership | None) -> bool:
    return me is not None and me.role == "admin"


def is_owner(me: Membership | None) -> bool:
    return me is not None and me.user_id == me.team.owner_id


def can_manage_team(me: Membership | None, team: Team) -> bool:
    """Rename, set the language, resend and revoke, change roles, remove members."""
    return is_admin(me) and me.team_id == team.id


def can_invite(me: Membership | None, team: Team) -> bool:
    return can_manage_team(me, team) and not team.managed_contact and team.is_active


def can_change_role(me: Membership | None, target: Membership) -> bool:
    """Admins change others' roles in their team; nobody changes the owner's or their own."""
    return role_changer(me)(target)


def role_changer(me: Membership | None):
    """can_change_role for many targets (a long member list): the actor's side worked out once."""
    if not is_admin(me):
        return lambda target: False
    team_id, untouchable = me.team_id, {me.user_id, me.team.owner_id}
    return lambda target: target.team_id == team_id and target.user_id not in untouchable


def grantable_roles(me: Membership | None, team: Team) -> tuple[str, ...]:
    """Roles an admin may give: never above their own (admin); assistants only on Practice."""
    if not is_admin(me):
        return ()
    return ("member", "admin", "assistant") if team.is_practice else ("member", "admin")


def can_remove(me: Membership | None, target: Membership) -> bool:
    return can_change_role(me, target)


def can_leave(me: Membership | None) -> bool:
    return me is not None and not is_owner(me)


def can_delete_team(me: Membership | None, team: Team) -> bool:
    return is_owner(me) and me.team_id == team.id


def can_transfer_ownership(me: Membership | None, team: Team) -> bool:
    """Offer the team to another admin, or cancel the offer: the owner only."""
    return is_owner(me) and me.team_id == team.id


def can_receive_ownership(me: Membership | None, target: Membership) -> bool:
    """Whom the owner may offer the team to: another admin of the same team."""
    return (
        can_transfer_ownership(me, me.team)
        and target.team_id == me.team_id
        and target.role == "admin"
        and target.user_id != me.user_id
    )


def can_answer_ownership(me: Membership | None, offer) -> bool:
    """Accept or decline an ownership offer: the admin it was made to, while still one."""
    return (
        is_admin(me)
        and not is_owner(me)
        and me.team_id == offer.team_id
        and me.user_id == offer.to_user_id
    )


def can_see_billing(me: Membership | None, team: Team) -> bool:
    return is_admin(me) and me.team_id == team.id


def can_change_billing(me: Membership | None, team: Team) -> bool:
    return is_owner(me) and me.team_id == team.id


def can_use_team_templates(me: Membership | None, team: Team) -> bool:
    """Browse, search, preview and use the team's templates: everyone on an active Practice team."""
    return me is not None and me.team_id == team.id and team.is_practice


def can_see_team_templates(me: Membership | None, team: Team) -> bool:
    """Admins keep reading team templates when the team is inactive (read-only)."""
    return can_use_team_templates(me, team) or (
        is_admin(me) and me.team_id == team.id and team.plan == "practice"
    )


def can_edit_team_templates(me: Membership | None, team: Team) -> bool:
    return is_admin(me) and me.team_id == team.id and team.is_practice


def can_create_sessions(me: Membership | None) -> bool:
    """Everyone writes their own sessions, except assistants (they help, they do not treat)."""
    return me is None or me.role != "assistant"


def sharing_on(team: Team) -> bool:
    return team.is_practice and team.sharing_enabled


def can_toggle_sharing(me: Membership | None, team: Team) -> bool:
    return is_admin(me) and me.team_id == team.id and team.is_practice


def can_require_two_factor(me: Membership | None, team: Team) -> bool:
    """Require two-step sign-in for every member, or stop requiring it: the team's admins."""
    return is_admin(me) and me.team_id == team.id


def can_share_session(me: Membership | None, session) -> bool:
    return (
        me is not None
        and session.owner_id == me.user_id
        and can_create_sessions(me)
        and sharing_on(me.team)
    )


PREDICATES = {
    name: fn
    for name, fn in globals().items()
    if name.startswith(("can_", "is_")) or name in ("grantable_roles", "sharing_on")
}
