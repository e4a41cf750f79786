"""Reading teams and memberships: the queries every feature shares (no rules, no side effects),
and the team page's member list (one page of members and the whole team's totals)."""

from datetime import datetime
from functools import cache
from typing import NamedTuple

from sqlalchemy import and_, bindparam, case, exists, func, or_, select, true
from sqlalchemy.orm import joinedload

from portal.auth.models import User
from portal.billing.queries import seat_change_queued, seat_key_prefix
from portal.db import plain_rows
from portal.exceptions import NotFoundError
from portal.extensions import db
from portal.teams.models import PAID_ROLES, ROLES, Membership, Team
from portal.twofa.models import TwoFactor

PAGE_SIZE = 50
# Longer searches match nobody's name or email; the bound keeps LIKE patterns small.
SEARCH_MAX = 100


class MemberRow(NamedTuple):
    """One line of the members list: plain columns, no ORM objects."""

    id: int
    team_id: int
    user_id: int
    role: str
    created_at: datetime
    name: str
    email: str
    last_seen_at: datetime | None
    two_factor_on: bool  # two-step sign-in set up (shown to admins)

    @property
    def is_paid_seat(self) -> bool:
        return self.role in PAID_ROLES


# The member list's explicit sorts (`?sort=name`, `-name` for descending, ...). Without one
# the list keeps its default order: the owner first, then you, then by name.
SORT_KEYS = ("name", "role", "joined")
SORTS = frozenset((*SORT_KEYS, *(f"-{key}" for key in SORT_KEYS)))


class MemberFilter(NamedTuple):
    """What the member list shows: a search in names and emails, one role, one page, and an
    explicit sort ("" for the default order)."""

    q: str = ""
    role: str = ""
    page: int = 1
    sort: str = ""

    @classmethod
    def of(
        cls, q: str | None, role: str | None, page: int, sort: str | None = None
    ) -> "MemberFilter":
        """A filter from request values: blanks trimmed, an unknown role means every role, an
        unknown sort the default order."""
        return cls(
            " ".join((q or "").split())[:SEARCH_MAX],
            role if role in ROLES else "",
            page,
            sort if sort in SORTS else "",
        )

    @property
    def sort_key(self) -> str:
        return self.sort.lstrip("-")

    @property
    def descending(self) -> bool:
        return self.sort.startswith("-")

    @property
    def narrowed(self) -> bool:
        return bool(self.q or self.role)


class MemberPage(NamedTuple):
    """One page of the member list and the totals it is a page of."""

    rows: list[MemberRow]
    member_count: int  # the whole team
    paid_seats: int  # the whole team
    matching: int  # members the filter finds, on every page
    page: int
    pages: int
    seats_updating: bool  # a seat change of the team is on its way to Stripe

    @property
    def first(self) -> int:
        return (self.page - 1) * PAGE_SIZE + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0


ROW_COLUMNS = (
    Membership.id,
    Membership.team_id,
    Membership.user_id,
    Membership.role,
    Membership.created_at,
    User.name,
    User.email,
    User.last_seen_at,
    exists()
    .where(TwoFactor.user_id == Membership.user_id, TwoFactor.enabled_at.is_not(None))
    .label("two_factor_on"),
)
# Role order for sorting: as the role table reads (admins, members, assistants), the same in
# every language (the labels' alphabetical order is not).
_ROLE_RANK = case({role: rank for rank, role in enumerate(ROLES)}, value=Membership.role)


def _order(f: MemberFilter) -> tuple:
    """The list's order: the default (owner, you, name) or a plain sort on one column; the
    membership id last, so that equal values keep one order from page to page."""
    if not f.sort:
        return (
            Membership.user_id != Team.owner_id,
            Membership.user_id != bindparam("viewer_id"),
            func.lower(User.name),
            Membership.id,
        )
    column = {
        "name": func.lower(User.name),
        "role": _ROLE_RANK,
        "joined": Membership.created_at,
    }[f.sort_key]
    direction = (lambda c: c.desc()) if f.descending else (lambda c: c.asc())
    ties = () if f.sort_key == "name" else (func.lower(User.name),)
    return (direction(column), *ties, direction(Membership.id))


def _matches(searching: bool, with_role: bool):
    conditions = [Membership.team_id == bindparam("team_id")]
    if with_role:
        conditions.append(Membership.role == bindparam("role"))
    if searching:
        # Emails are stored lower-cased; names are compared lower-cased too. The needle comes
        # LIKE-escaped (_like_needle), so % and _ are searched for as they are.
        needle = bindparam("needle")
        conditions.append(
            or_(
                func.lower(User.name).contains(needle, escape="/"),
                User.email.contains(needle, escape="/"),
            )
        )
    return and_(*conditions)


def _like_needle(q: str) -> str:
    return q.lower().replace("/", "//").replace("%", "/%").replace("_", "/_")


def _totals(searching: bool = False, with_role: bool = False):
    """The whole team's members and paid seats, how many of them the filter finds, and whether
    a seat change is on its way (asked here so the page needs no statement of its own)."""
    paid = case((Membership.role.in_(PAID_ROLES), 1), else_=0)
    matched = case((_matches(searching, with_role), 1), else_=0)
    return (
        select(
            func.count(Membership.id).label("member_count"),
            func.coalesce(func.sum(paid), 0).label("paid_seats"),
            func.coalesce(func.sum(matched), 0).label("matching"),
            seat_change_queued(bindparam("seat_prefix")).label("seats_updating"),
        )
        .join(User, User.id == Membership.user_id)
        .where(Membership.team_id == bindparam("team_id"))
    )


# Built once per shape of filter (search or not, role or not, sort: 28 in all) and run with
# each request's values: building a statement costs more than running it on a small team.
@cache
def _page_statement(searching: bool, with_role: bool, sort: str):
    totals = _totals(searching, with_role).subquery()
    order = _order(MemberFilter(sort=sort))
    rows = (
        select(
            *ROW_COLUMNS,
            func.row_number().over(order_by=order).label("position"),
        )
        .join(User, User.id == Membership.user_id)
        .join(Team, Team.id == Membership.team_id)
        .where(_matches(searching, with_role))
        .order_by(*order)
        .limit(PAGE_SIZE)
        .offset(bindparam("offset"))
        .subquery()
    )
    return (
        select(totals, *(rows.c[name] for name in MemberRow._fields))
        .select_from(totals.outerjoin(rows, true()))
        .order_by(rows.c.position)
    )


_TEAM_TOTALS = _totals()


def member_page(team: Team, viewer_id: int, f: MemberFilter) -> MemberPage:
    """One page of the team's members, in the filter's order (by default the owner first, then
    the viewer, then by name).

    One statement: the whole team's totals (a one-row subquery) left-joined to the page, so
    the totals come back even for a page with no rows."""
    result = plain_rows(
        _page_statement(bool(f.q), bool(f.role), f.sort),
        team_id=team.id,
        viewer_id=viewer_id,
        offset=(f.page - 1) * PAGE_SIZE,
        seat_prefix=seat_key_prefix(team.id),
        role=f.role,
        needle=_like_needle(f.q),
    )
    head = result[0]
    members = [MemberRow._make(row[4:]) for row in result if row.id is not None]
    return MemberPage(
        rows=members,
        member_count=head.member_count,
        paid_seats=int(head.paid_seats),
        matching=int(head.matching),
        page=f.page,
        pages=max(1, -(-int(head.matching) // PAGE_SIZE)),
        seats_updating=bool(head.seats_updating),
    )


def team_totals(team: Team) -> tuple[int, int, bool]:
    """The whole team's members and paid seats and whether a seat change is on its way, for
    the seat line alone."""
    totals = plain_rows(_TEAM_TOTALS, team_id=team.id, seat_prefix=seat_key_prefix(team.id))[0]
    return totals.member_count, int(totals.paid_seats), bool(totals.seats_updating)


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
