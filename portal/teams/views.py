from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from markupsafe import escape

from portal import current, permissions
from portal.audit import service as audit
from portal.auth.service import safe_next
from portal.billing import service as billing
from portal.billing.seats import seat_change_pending
from portal.clock import utcnow
from portal.extensions import db, limiter
from portal.forms import page_number
from portal.htmx import announce, is_htmx, notify
from portal.i18n import formats, ngettext
from portal.i18n import gettext as _
from portal.invitations import service as invitations
from portal.ownership.service import offer_line
from portal.teams import queries, service
from portal.teams.forms import ROLE_LABELS, InviteForm, RoleForm, TeamNameForm, TeamSettingsForm

bp = Blueprint("teams", __name__, url_prefix="/settings/teams")


def _me():
    """The actor's membership; a user without a team may not use team actions."""
    me = current.membership()
    if me is None:
        abort(403)
    return me


def _admin():
    me = _me()
    if not permissions.can_manage_team(me, me.team):
        abort(403)
    return me


def team_context(me, *, with_members: bool = True, **extra) -> dict:
    """Everything the team page and its partials show, in a fixed number of queries.
    with_members=False leaves out the member table (no action's reply shows all of it)."""
    team = me.team
    members = service.members_of(team)
    now = utcnow()
    seat_line = seat_context(me, members)
    return {
        **seat_line,
        "large_team": seat_line["paid_seats"] >= current_app.config["LARGE_TEAM_SEATS"],
        **(member_table(me, team, members) if with_members else {}),
        **invitation_table(me, team, invitations.pending_invitations(team), now),
        **audit_entries(team.id, 1),
        "ownership_offer": offer_line(me, now=now),
        # formdata=None: after a POST the forms show fresh, not what was just submitted.
        "invite_form": InviteForm(permissions.grantable_roles(me, team), formdata=None),
        **extra,
    }


def seat_context(me, members) -> dict:
    """What _seats.html shows, and whether a seat change is still on its way to Stripe."""
    return {
        "me": me,
        "team": me.team,
        "member_count": len(members),
        "paid_seats": sum(m.is_paid_seat for m in members),
        "seats_updating": seat_change_pending(me.team_id),
    }


def reply(me, message: str, *templates: str, **extra):
    """After an action: 303 back for a plain form; for htmx the first template's fragment,
    the others out of band, the activity log, and the message in #flash."""
    if not is_htmx():
        flash(message, "success")
        return redirect(url_for("teams.show"), 303)
    context = team_context(me, with_members=False, **extra)
    html = "".join(
        render_template(template, oob=index > 0, **context)
        for index, template in enumerate((*templates, "teams/_audit.html"))
    )
    return notify(current_app.make_response(html), message)


def role_labels() -> dict:
    """Role labels in the request's language, escaped (str() first: escape() trusts a lazy
    string's __html__ as it is)."""
    return {role: escape(str(label)) for role, label in ROLE_LABELS.items()}


def member_table(me, team, members, *, focus: bool = False) -> dict:
    """The members table as plain values, worked out in one pass. A team may list 1,000s of
    members: a Jinja loop over ready values renders several times faster than one calling
    filters, lookups and predicates in every row (docs/performance.md). _member_rows.html
    escapes names and emails; everything else is escaped here (dates by formats().date).
    focus=True: a single row that replaces its editor takes the focus back to its link."""
    labels = role_labels()
    seats = {role: escape(_("Free") if role == "assistant" else _("Paid")) for role in labels}
    date = formats().date
    editor = url_for("teams.show") + "/members/"
    editable = permissions.role_changer(me)
    return {
        "member_rows": [
            (
                m.id,
                m.name,
                m.email,
                labels[m.role],
                date(m.created_at),
                seats[m.role],
                m.user_id,
                f"{editor}{m.id}" if editable(m) else None,
            )
            for m in members
        ],
        "kit": {
            "manage": permissions.can_manage_team(me, team),
            "owner_id": team.owner_id,
            "me_id": me.user_id,
            "owner": escape(_("Owner")),
            "you": escape(_("you")),
            "edit": escape(_("Change role or remove")),
            "focus": focus,
        },
    }


def member_row(me, member) -> dict:
    """member_table() for the one row that replaces its editor (it takes the focus back)."""
    return member_table(me, me.team, service.members_of(me.team, only=member.id), focus=True)


def audit_entries(team_id: int, page: int) -> dict:
    """One page of the activity log as ready values (time, when, who, what)."""
    events, has_older = audit.page_of(team_id, page)
    when = formats().datetime
    support = _("Clinic Teams support")
    return {
        "audit_rows": [
            (
                e.created_at.isoformat() + "Z",
                when(e.created_at, "short"),
                e.actor_name if e.actor_id else support,
                audit.describe(e),
            )
            for e in events
        ],
        "audit_page": page,
        "audit_has_older": has_older,
    }


def invitation_table(me, team, pending, now) -> dict:
    """The pending invitations as plain values, like member_table(): _invitations.html escapes
    emails and inviters' names; everything else is escaped here."""
    labels = role_labels()
    date = formats().date
    expired = escape(_("Expired"))
    deliveries = {
        "pending": escape(_("sending…")),
        "running": escape(_("sending…")),
        "failed": escape(_("not delivered – check the address or resend")),
    }
    days_texts = {}
    rows = []
    for i in pending:
        if i.expires_at <= now:
            status = expired
        else:
            days = invitations.days_left(i, now)
            if days not in days_texts:
                days_texts[days] = escape(ngettext("%(num)d day left", "%(num)d days left", days))
            status = days_texts[days]
        rows.append(
            (
                i.id,
                i.email,
                labels[i.role],
                i.invited_by or "–",
                date(i.sent_at),
                status,
                deliveries.get(i.delivery, ""),
            )
        )
    # The confirmation names the address: split around it once, not formatted for every row.
    confirm = escape(_("Revoke the invitation to %(email)s? The link stops working."))
    before, _placeholder, after = confirm.partition("%(email)s")
    return {
        "invitation_rows": rows,
        # While an email is on its way the list refreshes itself until it is not.
        "invitations_sending": any(row[-1] == deliveries["pending"] for row in rows),
        "invitation_kit": {
            "can_resend": permissions.can_invite(me, team),
            "base": url_for("teams.show") + "/invitations/",
            "expired": expired,
            "sending": deliveries["pending"],
            "resend": escape(_("Resend")),
            "revoke": escape(_("Revoke")),
            "confirm": (before, after),
        },
    }


@bp.get("")
@login_required
def show():
    me = current.membership()
    if me is None:
        return render_template(
            "teams/none.html",
            form=TeamNameForm(),
            plan=billing.plan_of(current_user, current.membership()),
        )
    return render_template("teams/show.html", **team_context(me))


@bp.post("")
@login_required
def create():
    form = TeamNameForm()
    if not form.validate_on_submit():
        plan = billing.plan_of(current_user, current.membership())
        return render_template("teams/none.html", form=form, plan=plan), 422
    team = service.create_team(current_user, form.name.data, now=utcnow())
    db.session.commit()
    flash(_("Team %(name)s is created. Invite your colleagues below.", name=team.name), "success")
    return redirect(url_for("teams.show"), 303)


@bp.get("/settings")
@login_required
def edit_settings():
    """The rename and language form: in place for htmx, a page of its own without JavaScript."""
    me = _admin()
    form = TeamSettingsForm(name=me.team.name, locale=me.team.locale)
    return _settings_form(me, form)


def _settings_form(me, form, status=200):
    template = "teams/_settings.html" if is_htmx() else "teams/settings.html"
    return render_template(template, team=me.team, settings_form=form), status


@bp.post("/settings")
@login_required
def update_settings():
    me = _admin()
    form = TeamSettingsForm()
    if not form.validate_on_submit():
        return announce(make_response(_settings_form(me, form, 422)), _("Check the team name."))
    service.rename_team(me.team, form.name.data, form.locale.data, actor=me.user, now=utcnow())
    db.session.commit()
    message = _("Team settings saved.")
    return reply(me, message, "teams/_settings.html", "teams/_title.html", settings_saved=True)


def _not_an_admin() -> bool:
    """Refused requests must not use up the admins' budget (the view answers 403)."""
    me = current.membership()
    return not permissions.can_manage_team(me, me.team) if me else True


@bp.get("/invitations", endpoint="invitations")
@login_required
def pending_invitations():
    """The pending invitations alone: htmx refreshes them while an email is on its way."""
    me = _admin()
    if not is_htmx():
        return redirect(url_for("teams.show"), 303)
    pending = invitations.pending_invitations(me.team)
    return render_template(
        "teams/_invitations.html", **invitation_table(me, me.team, pending, utcnow())
    )


@bp.get("/seats")
@login_required
def seats():
    """The seat line alone: htmx refreshes it while a seat change is on its way to Stripe."""
    me = _me()
    if not is_htmx():
        return redirect(url_for("teams.show"), 303)
    members = service.members_of(me.team)
    return render_template("teams/_seats.html", **seat_context(me, members))


@bp.post("/invitations")
@login_required
def invite():
    me = _admin()
    form = InviteForm(permissions.grantable_roles(me, me.team))
    if not form.validate_on_submit():
        return _invite_error(me, form, 422, _("Enter at least one email address."))
    try:
        results = invitations.invite_members(me, form.emails.data, form.role.data, now=utcnow())
    except invitations.InviteLimitError as error:
        message = ngettext(
            "Nothing was sent: you can invite %(num)d more person now.",
            "Nothing was sent: you can invite %(num)d more people now.",
            error.allowance,
        )
        return _invite_error(me, form, 429, message)
    except invitations.TooManyAddressesError as error:
        message = _(
            "At most %(max)d addresses at a time; you can invite %(left)d more now.",
            max=invitations.MAX_ADDRESSES,
            left=error.allowance,
        )
        return _invite_error(me, form, 422, message)
    db.session.commit()
    summary = _results_summary(results)
    if not is_htmx():
        for line in summary[:-1]:
            flash(line, "info")
    return reply(
        me,
        summary[-1] if not is_htmx() else " ".join(summary),
        "teams/_invite.html",
        "teams/_invitations.html",
        results=results,
    )


def _invite_error(me, form, status: int, message: str):
    """The invite form again with the message beside the addresses; nothing was sent."""
    db.session.rollback()
    if message not in form.emails.errors:
        form.emails.errors = [*form.emails.errors, message]
    if is_htmx():
        html = render_template(
            "teams/_invite.html", **team_context(me, with_members=False, invite_form=form)
        )
    else:
        html = render_template("teams/show.html", **team_context(me, invite_form=form))
    return announce(make_response(html, status), message)


def _results_summary(results) -> list[str]:
    words = {
        "invited": _("Invitation sent to %(email)s."),
        "resent": _("%(email)s was already invited: we sent the invitation again."),
        "already_invited": _("%(email)s is already invited."),
        "member": _("%(email)s is already a member of this team."),
        "invalid": _("%(email)s is not a valid email address."),
        "unsupported": _(
            "%(email)s cannot get our emails: use an address without letters like æ, ø or å."
        ),
        "yourself": _("%(email)s is you."),
    }
    return [words[r.outcome] % {"email": r.email} for r in results]


def _resend_key() -> str:
    me = current.membership()
    return f"resend:{me.team_id if me else 'none'}:{request.view_args['invitation_id']}"


@bp.post("/invitations/<int:invitation_id>/resend")
@login_required
@limiter.limit(
    lambda: current_app.config["RATELIMIT_RESEND"], key_func=_resend_key, exempt_when=_not_an_admin
)
def resend(invitation_id):
    me = _admin()
    invitation = invitations.resend_invitation(me, invitation_id, now=utcnow())
    db.session.commit()
    message = _(
        "Invitation sent again to %(email)s. The earlier link no longer works.",
        email=invitation.email,
    )
    return reply(me, message, "teams/_invitations.html")


@bp.post("/invitations/<int:invitation_id>/revoke")
@login_required
def revoke(invitation_id):
    me = _admin()
    invitation = invitations.revoke_invitation(me, invitation_id, now=utcnow())
    db.session.commit()
    message = _(
        "Invitation to %(email)s revoked. The link no longer works.", email=invitation.email
    )
    return reply(me, message, "teams/_invitations.html")


@bp.post("/members/<int:membership_id>/role")
@login_required
def change_role(membership_id):
    me = _admin()
    form = RoleForm(permissions.grantable_roles(me, me.team))
    if not form.validate_on_submit():
        abort(400)
    member = service.change_role(me, membership_id, form.role.data, now=utcnow())
    db.session.commit()
    message = _(
        "%(name)s is now %(role)s.",
        name=member.user.name,
        role=ROLE_LABELS[member.role],
    )
    return reply(
        me,
        message,
        "teams/_member_rows.html",
        "teams/_seats.html",
        **member_row(me, member),
    )


@bp.get("/members/<int:membership_id>")
@login_required
def member(membership_id):
    """A member's editor: in the row for htmx, a page of its own without JavaScript."""
    me = _admin()
    member = queries.find_member(me.team, membership_id)
    if not permissions.can_change_role(me, member):
        abort(403)
    if request.args.get("view") == "row":
        return render_template(
            "teams/_member_rows.html",
            **member_row(me, member),
        )
    template = "teams/_member_editor.html" if is_htmx() else "teams/member.html"
    return render_template(template, member=member, me=me, team=me.team)


@bp.route("/members/<int:membership_id>/remove", methods=["GET", "POST"])
@login_required
def remove(membership_id):
    me = _admin()
    if request.method == "GET":
        member = queries.find_member(me.team, membership_id)
        if not permissions.can_remove(me, member):
            abort(403)
        # The price preview comes before the admin acts, with or without JavaScript.
        return render_template(
            "teams/_remove_row.html" if is_htmx() else "teams/remove.html",
            member=member,
            team=me.team,
            me=me,
            preview=billing.removal_preview(me.team) if member.is_paid_seat else None,
        )
    user = service.remove_member(me, membership_id, now=utcnow())
    db.session.commit()
    message = _("%(name)s was removed from the team and is back on Free.", name=user.name)
    return reply(me, message, "teams/_empty.html", "teams/_seats.html")


@bp.route("/leave", methods=["GET", "POST"])
@login_required
def leave():
    me = _me()
    if not permissions.can_leave(me):
        abort(403)
    if request.method == "GET":
        return render_template("teams/leave.html", team=me.team, next=request.args.get("next"))
    name = me.team.name
    service.leave_team(me, now=utcnow())
    db.session.commit()
    flash(_("You left %(team)s and are back on Free.", team=name), "success")
    return redirect(safe_next(request.form.get("next"), url_for("teams.show")), 303)


@bp.route("/delete", methods=["GET", "POST"])
@login_required
def delete():
    me = _me()
    if not permissions.can_delete_team(me, me.team):
        abort(403)
    if request.method == "GET" or request.form.get("confirm") != me.team.name:
        error = request.method == "POST"
        return render_template(
            "teams/delete.html", team=me.team, error=error
        ), 422 if error else 200
    name = me.team.name
    service.delete_team(me, now=utcnow())
    db.session.commit()
    flash(
        _("Team %(name)s is deleted. Your own subscription continues with one seat.", name=name),
        "success",
    )
    return redirect(url_for("teams.show"), 303)


@bp.post("/sharing")
@login_required
def set_sharing():
    from portal.clinical_sessions.service import set_sharing as set_team_sharing

    me = _admin()
    enabled = request.form.get("enabled") == "1"
    set_team_sharing(me, enabled, now=utcnow())
    db.session.commit()
    message = (
        _("Session sharing is on: members can share sessions with the team.")
        if enabled
        else _("Session sharing is off: shared sessions are hidden from the team.")
    )
    return reply(me, message, "teams/_sharing.html")


@bp.get("/audit")
@login_required
def audit_log():
    me = _me()
    if not permissions.can_manage_team(me, me.team):
        abort(403)
    page = request.args.get("page", 1, type=page_number)
    return render_template(
        "teams/_audit_rows.html" if is_htmx() else "teams/audit.html",
        team=me.team,
        **audit_entries(me.team_id, page),
        # "Show older activity" replaces itself: focus moves on to the first older entry.
        focus_first=is_htmx(),
    )


def init_app(app) -> None:
    from portal.teams.forms import ROLE_LABELS

    app.jinja_env.globals.update(
        role_label=lambda role: ROLE_LABELS[role],
        period_total=billing.period_total,
        contact_url=lambda: url_for("sales.contact"),
    )
