"""What the team page and its partials show, built from the services' and queries' results."""

import re
from typing import NamedTuple

from flask import current_app, url_for

from portal import permissions
from portal.audit import service as audit
from portal.clock import utcnow
from portal.exports import service as exports
from portal.i18n import formats, ngettext
from portal.i18n import gettext as _
from portal.invitations import service as invitations
from portal.ownership.service import offer_line
from portal.teams import queries, service
from portal.teams.forms import INVITE_HINT, ROLE_LABELS
from portal.teams.models import PAID_ROLES
from portal.teams.queries import MemberFilter, MemberRow


class ListArgs(NamedTuple):
    """The team page's query string: the member list's search, role and page, and the page of
    pending invitations. The page and its partials take the same one."""

    members: MemberFilter = MemberFilter()
    invitations_page: int = 1

    def url_values(self, **changes) -> dict:
        """The query values that differ from the defaults, for url_for (stable, short URLs)."""
        values = {
            "q": self.members.q,
            "role": self.members.role,
            "sort": self.members.sort,
            "page": self.members.page,
            "invitations_page": self.invitations_page,
            **changes,
        }
        return {k: v for k, v in values.items() if v not in ("", 1)}

    def links(self, endpoint: str, **changes) -> dict:
        """The page's URL (href, bookmarkable) and the partial's (hx-get) for the same view."""
        values = self.url_values(**changes)
        return {"page": url_for("teams.show", **values), "part": url_for(endpoint, **values)}


def team_page(me, args: ListArgs, *, with_members: bool = True, **extra) -> dict:
    """Everything the team page and its partials show, in a fixed number of queries.
    with_members=False leaves out the member list (no action's reply shows it)."""
    team = me.team
    names = role_names()
    if with_members:
        members = member_list(me, args, names)
        page = members["members"]
        counts = page.member_count, page.paid_seats, page.seats_updating
    else:
        members, counts = {}, queries.team_totals(team)
    seat_line = seat_context(me, *counts)
    return {
        **seat_line,
        "large_team": seat_line["paid_seats"] >= current_app.config["LARGE_TEAM_SEATS"],
        **members,
        **invitation_list(me, args, names),
        **audit_entries(team.id, 1),
        "ownership_offer": offer_line(me, now=utcnow()) if with_members else None,
        **invite_box(me, names),
        **extra,
    }


def invite_box(me, names: dict[str, str]) -> dict:
    """The invite box's role choices, translated once. The box is written in the template
    (teams/_invite.html); InviteForm validates what it posts, and a refused post passes the
    form as `invite_form` to show what was typed and the errors beside the field."""
    return {
        "invite_roles": [(role, names[role]) for role in permissions.grantable_roles(me, me.team)],
        "invite_hint": str(INVITE_HINT),
    }


def seat_context(me, member_count: int, paid_seats: int, seats_updating: bool) -> dict:
    """What _seats.html shows (whole-team totals), and whether a seat change is on its way."""
    return {
        "me": me,
        "team": me.team,
        "member_count": member_count,
        "paid_seats": paid_seats,
        "seats_updating": seats_updating,
    }


def seat_line(me) -> dict:
    """seat_context() for the seat line alone."""
    return seat_context(me, *queries.team_totals(me.team))


class MemberView(NamedTuple):
    """One row of the member list as it is shown: the texts worked out once per page."""

    row: MemberRow
    role: str
    joined: str
    last_active: str  # "" for viewers who do not see the column
    is_owner: bool
    is_you: bool
    editable: bool


def role_names() -> dict[str, str]:
    """Each role's label in the current language, translated once for a whole page."""
    return {role: str(label) for role, label in ROLE_LABELS.items()}


def member_views(me, rows: list[MemberRow], names: dict[str, str]) -> list[MemberView]:
    """The rows as the list shows them. Only admins see when each member was last active."""
    dates = formats()
    with_activity = permissions.can_manage_team(me, me.team)
    today = dates.local_date(utcnow()) if with_activity else None
    texts = {"today": _("Today"), "none": _("Not recorded")} if with_activity else {}
    editable = permissions.role_changer(me)
    owner_id = me.team.owner_id

    def last_active(seen) -> str:
        if not with_activity:
            return ""
        if seen is None:
            return texts["none"]
        return texts["today"] if dates.local_date(seen) == today else dates.date(seen)

    return [
        MemberView(
            row,
            names[row.role],
            dates.date(row.created_at),
            last_active(row.last_seen_at),
            row.user_id == owner_id,
            row.user_id == me.user_id,
            editable(row),
        )
        for row in rows
    ]


# The column headers that sort, and the direction each one's first click sorts in: names and
# roles from the top, joined dates newest first (what an admin looks for).
SORT_HEADERS = {"name": "name", "role": "role", "joined": "-joined"}


def sort_links(args: ListArgs) -> dict[str, dict]:
    """Each sortable header's link (the other direction when it already sorts the list, back
    to the first page) and its aria-sort value ("" when the list is not sorted by it)."""
    f = args.members
    links = {}
    for key, first in SORT_HEADERS.items():
        if f.sort_key == key:
            target = key if f.descending else f"-{key}"
            state = "descending" if f.descending else "ascending"
        else:
            target, state = first, ""
        links[key] = {"state": state, **args.links("teams.members", sort=target, page=1)}
    return links


def member_list(me, args: ListArgs, names: dict[str, str] | None = None) -> dict:
    """One page of the member list, its status line, its sort links and its pager. `names`:
    role_names(), when the caller has them already."""
    page = queries.member_page(me.team, me.user_id, args.members)
    names = names or role_names()
    return {
        "me": me,
        "team": me.team,
        "members": page,
        "member_rows": member_views(me, page.rows, names),
        "member_filter": args.members,
        "member_status": member_status(page, args.members),
        "member_pager": pager(args, "teams.members", "page", page.page, page.pages),
        "member_sort": sort_links(args),
        "show_last_active": permissions.can_manage_team(me, me.team),
        # Assistants exist only on Practice: a Pro team has none to filter by.
        "role_choices": [
            (role, label)
            for role, label in names.items()
            if role != "assistant" or me.team.is_practice
        ],
    }


def sort_status(f: MemberFilter) -> str:
    """How the list is sorted, in words, for the status line ("" for the default order)."""
    if not f.sort:
        return ""
    return {
        "name": _("sorted by name, A–Z"),
        "-name": _("sorted by name, Z–A"),
        "role": _("sorted by role, admins first"),
        "-role": _("sorted by role, assistants first"),
        "joined": _("sorted by joined date, oldest first"),
        "-joined": _("sorted by joined date, newest first"),
    }[f.sort]


def member_status(page: queries.MemberPage, f: MemberFilter) -> str:
    """The line above the list, also announced after a search, a sort or a page change."""
    if f.narrowed:
        parts = [ngettext("%(num)d member found", "%(num)d members found", page.matching)]
    else:
        parts = [ngettext("%(num)d member", "%(num)d members", page.matching)]
    if page.rows and page.pages > 1:
        parts.append(
            _(
                "showing %(first)d–%(last)d, page %(page)d of %(pages)d",
                first=page.first,
                last=page.last,
                page=page.page,
                pages=page.pages,
            )
        )
    elif not page.rows and page.matching:
        parts.append(_("there is no page %(page)d", page=page.page))
    if f.sort:
        parts.append(sort_status(f))
    return " · ".join(parts)


def pager(args: ListArgs, endpoint: str, key: str, page: int, pages: int) -> dict:
    """Links to the previous and next page of one list (None where there is none); a page
    past the end links back to the last one."""
    previous = min(page - 1, pages) if page > 1 else None
    following = page + 1 if page < pages else None
    return {
        "page": page,
        "pages": pages,
        "previous": args.links(endpoint, **{key: previous}) if previous else None,
        "next": args.links(endpoint, **{key: following}) if following else None,
    }


def member_row(me, member_id: int) -> dict:
    """The one row that replaces its editor: it takes the focus back to its link. (The
    caller's context has `me` and `team`.)"""
    return {
        "member_rows": member_views(me, service.members_of(me.team, only=member_id), role_names()),
        "show_last_active": permissions.can_manage_team(me, me.team),
        "focus": True,
    }


def audit_entries(team_id: int, page: int, f: audit.LogFilter = audit.EVERYTHING) -> dict:
    """One page of the activity log (as the filter narrows it), newest first, and whether
    there is an older page."""
    events, has_older = audit.page_of(team_id, page, f)
    support = _("Clinic Teams support")
    names = audit.shown_names()
    return {
        "audit_rows": [
            (
                e.created_at,
                support
                if e.actor_id is None and e.actor_name == "system"
                else names.get(e.actor_name, e.actor_name),
                text,
            )
            for e, text in zip(events, audit.describe_all(events), strict=True)
        ],
        "audit_page": page,
        "audit_has_older": has_older,
        "audit_filter": f,
    }


def invitation_list(me, args: ListArgs, names: dict[str, str] | None = None) -> dict:
    """One page of the pending invitations with each one's status and the list's pager.
    `names`: role_names(), when the caller has them already."""
    now = utcnow()
    rows, total, expired = invitations.pending_page(me.team, args.invitations_page, now=now)
    pages = max(1, -(-total // invitations.INVITATIONS_PAGE_SIZE))
    statuses = {}  # rows sent the same day share one status text

    def status(row):
        days = invitations.days_left(row, now) if row.expires_at > now else None
        if days not in statuses:
            statuses[days] = invitation_status(row, now)
        return statuses[days]

    return {
        "invitation_rows": [(row, status(row)) for row in rows],
        # The words each row needs, translated once per page rather than once per row.
        "invitation_roles": names or role_names(),
        "inviter_names": audit.shown_names(),  # a deleted inviter reads "deleted user"
        "invitation_total": total,
        "invitations_expired": expired,
        # While an email is on its way the list refreshes itself until it is not.
        "invitations_sending": any(row.delivery in ("pending", "running") for row in rows),
        "invitations_refresh": args.links("teams.invitations")["part"],
        # Resend and revoke come back to the same page of the list.
        "list_args": args.url_values(),
        "invitation_pager": pager(
            args, "teams.invitations", "invitations_page", args.invitations_page, pages
        ),
        "can_resend": permissions.can_invite(me, me.team),
    }


def invitation_status(row, now) -> tuple[str, str]:
    """An invitation's status text and its CSS class ("" for plain text)."""
    if row.expires_at <= now:
        return _("Expired"), "warning"
    days = invitations.days_left(row, now)
    return ngettext("%(num)d day left", "%(num)d days left", days), ""


PROBLEMS = ("invalid", "unsupported", "yourself", "role", "unknown_role")


def invite_summary(results) -> tuple[str, str]:
    """The count of an invitation round for #flash and the announcement (the list itself is
    on the page), and its style: an error when any address needs attention."""
    sent = sum(r.will_send for r in results)
    problems = sum(r.outcome in PROBLEMS for r in results)
    parts = [ngettext("%(num)d invitation sent.", "%(num)d invitations sent.", sent)]
    if problems:
        parts.append(
            ngettext(
                "%(num)d address needs your attention: see the list.",
                "%(num)d addresses need your attention: see the list.",
                problems,
            )
        )
    return " ".join(parts), "error" if problems else "success"


def needing_attention(results) -> tuple[str, list[str]] | None:
    """The addresses of an invitation round that were not invited, as the box shows them
    again (one per line, with the name that came with it), and the error beside the box."""
    left = [r for r in results if r.outcome in PROBLEMS]
    if not left:
        return None
    typed = "\n".join(f"{r.name} <{r.email}>" if r.name else r.email for r in left)
    error = ngettext(
        "%(num)d address was not invited: correct it here and send again, or remove it.",
        "%(num)d addresses were not invited: correct them here and send again, or remove them.",
        len(left),
    )
    return typed, [error]


def result_lines(results) -> list[tuple[str, str]]:
    """One line per address of an invitation round, and its style (without JavaScript the
    flashed lines are the result list)."""
    words = {
        "invited": _("Invitation sent to %(email)s."),
        "resent": _("%(email)s was already invited: we sent the invitation again."),
        "already_invited": _("%(email)s is already invited."),
        "member": _("%(email)s is already a member of this team."),
        "invalid": _("%(email)s is not a valid email address."),
        "unsupported": _(
            "%(email)s cannot get our emails: use an address without letters like æ, ø or å."
        ),
        "role": _("%(email)s: this role cannot be given here (assistants need Practice)."),
        "yourself": _("%(email)s is you."),
        "unknown_role": _("%(email)s: unknown role “%(role)s”: use member, admin or assistant."),
    }
    return [
        (
            words[r.outcome] % {"email": r.email, "role": r.role},
            "error" if r.outcome in PROBLEMS else "info",
        )
        for r in results
    ]


def invite_price(me, entries, role: str) -> dict:
    """The price line under the invite box for this many new addresses, and the large-team
    offer once a list of LARGE_TEAM_SEATS or more is pasted."""
    paid = queries.team_totals(me.team)[1]
    new = len(entries) if role in PAID_ROLES else 0
    return {
        "team": me.team,
        "typed": len(entries),
        "price_seats": paid + max(new, 1 if role in PAID_ROLES else 0),
        "free_role": role not in PAID_ROLES,
        "large_team": paid >= current_app.config["LARGE_TEAM_SEATS"]
        or len(entries) >= current_app.config["LARGE_TEAM_SEATS"],
    }


def invite_preview(me, plan) -> dict:
    """The CSV preview: each row's outcome, the roles it may take, and the price once every
    invitation that goes out is accepted."""
    paid = queries.team_totals(me.team)[1]
    sending = [p for p in plan if p.will_send]
    added = sum(p.outcome == "invited" and p.role in PAID_ROLES for p in sending)
    return {
        "plan": plan,
        "sending": len(sending),
        "preview_roles": [
            (role, ROLE_LABELS[role]) for role in permissions.grantable_roles(me, me.team)
        ],
        "price_now": paid,
        "price_after": paid + added,
        "preview_status": ngettext(
            "%(num)d invitation ready to send. Check the list, then send.",
            "%(num)d invitations ready to send. Check the list, then send.",
            len(sending),
        ),
    }


PLACEHOLDER = re.compile(r"%\(\w+\)s")


def export_filters(team_id: int) -> dict:
    """The activity export's choices: the people in the log and the actions, as they read
    (each person as (stored name, shown name))."""
    names = audit.shown_names()
    return {
        "people": [(name, names.get(name, name)) for name in exports.people_in_log(team_id)],
        "actions": sorted(
            ((code, PLACEHOLDER.sub("…", str(label))) for code, label in audit.ACTIONS.items()),
            key=lambda item: item[1],
        ),
    }
