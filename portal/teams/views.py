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

from portal import current, permissions
from portal.audit import service as audit
from portal.auth.service import safe_next
from portal.billing import service as billing
from portal.clinical_sessions.service import set_sharing as set_team_sharing
from portal.clock import utcnow
from portal.extensions import db, limiter
from portal.forms import Form, page_number, plain, row_id
from portal.htmx import announce, is_htmx, notify, push_url, retarget
from portal.i18n import gettext as _
from portal.i18n import ngettext
from portal.invitations import service as invitations
from portal.team_templates.service import team_template_count
from portal.teams import presenters, queries, service
from portal.teams.forms import (
    ROLE_LABELS,
    CsvInviteForm,
    InviteForm,
    RoleForm,
    TeamNameForm,
    TeamSettingsForm,
)
from portal.teams.queries import MemberFilter

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


def _list_args() -> presenters.ListArgs:
    """The team page's query string (?q=&role=&sort=&page=&invitations_page=); bad values mean
    the defaults, never an error."""
    args = request.args
    return presenters.ListArgs(
        members=MemberFilter.of(
            args.get("q", type=plain),
            args.get("role"),
            args.get("page", 1, type=page_number),
            args.get("sort"),
        ),
        invitations_page=args.get("invitations_page", 1, type=page_number),
    )


def reply(me, message: str, *templates: str, with_members: bool = False, **extra):
    """After an action: 303 back for a plain form; for htmx the first template's fragment,
    the others out of band, the activity log, and the message in #flash. Both keep the lists'
    pages (the action's URL carries the page's query string). with_members: the member list
    is in the context (an action that changes who is on it)."""
    args = _list_args()
    category = extra.pop("category", "success")
    if not is_htmx():
        flash(message, category)
        return redirect(url_for("teams.show", **args.url_values()), 303)
    context = presenters.team_page(me, args, with_members=with_members, **extra)
    html = "".join(
        render_template(template, oob=index > 0, **context)
        for index, template in enumerate((*templates, "teams/_audit.html"))
        if template
    )
    return notify(current_app.make_response(html), message, category)


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
    return render_template("teams/show.html", **presenters.team_page(me, _list_args()))


@bp.get("/members")
@login_required
def members():
    """The member list alone, for the search and the pager; the URL shown is the page's."""
    me = _me()
    args = _list_args()
    if not is_htmx():
        return redirect(url_for("teams.show", **args.url_values()), 303)
    context = presenters.member_list(me, args)
    response = make_response(render_template("teams/_members.html", **context))
    push_url(response, url_for("teams.show", **args.url_values()))
    return announce(response, context["member_status"])


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
    args = _list_args()
    if not is_htmx():
        return redirect(url_for("teams.show", **args.url_values()), 303)
    return render_template("teams/_invitations.html", **presenters.invitation_list(me, args))


@bp.get("/seats")
@login_required
def seats():
    """The seat line alone: htmx refreshes it while a seat change is on its way to Stripe."""
    me = _me()
    if not is_htmx():
        return redirect(url_for("teams.show"), 303)
    return render_template("teams/_seats.html", **presenters.seat_line(me))


@bp.post("/invitations")
@login_required
def invite():
    """The invite box: what was pasted goes out at once, with a result per address."""
    me = _admin()
    form = InviteForm(permissions.grantable_roles(me, me.team))
    if not form.validate_on_submit():
        return _invite_error(me, form, 422, _("Enter at least one email address."))
    entries = invitations.parse_entries(form.emails.data)
    return _invite(me, form, entries, form.role.data)


@bp.get("/invitations/upload")
@login_required
def upload_invitations():
    """The CSV upload on a page of its own: the team page renders only the invite box."""
    me = _admin()
    form = CsvInviteForm(permissions.grantable_roles(me, me.team), formdata=None)
    return _upload_page(me, csv_form=form)


def _upload_page(me, status=200, **context):
    """The upload page, or for htmx its #invite-form (the form, or the preview that replaces
    it)."""
    template = "teams/_upload.html" if is_htmx() else "teams/upload.html"
    return make_response(render_template(template, me=me, team=me.team, **context), status)


@bp.post("/invitations/preview")
@login_required
def preview_invitations():
    """The CSV upload's first step: what each row would do, and the price, before sending."""
    me = _admin()
    form = CsvInviteForm(permissions.grantable_roles(me, me.team))
    if not form.validate_on_submit():
        return _upload_error(me, form, 422, None)
    try:
        entries = invitations.parse_csv(form.csv.data.read())
        plan = invitations.plan_invitations(me, entries, form.role.data, now=utcnow())
    except invitations.CsvError as error:
        return _upload_error(me, form, 422, str(error))
    except invitations.TooManyAddressesError as error:
        return _upload_error(me, form, _limit_status(error), _limit_message(error))
    db.session.rollback()  # the preview changes nothing (it only held the team lock)
    preview = presenters.invite_preview(me, plan)
    return announce(_upload_page(me, preview=preview), preview["preview_status"])


def _upload_error(me, form, status: int, message: str | None):
    """The upload form again with the message beside the file field; nothing was sent."""
    db.session.rollback()
    if message and message not in form.csv.errors:
        form.csv.errors = [*form.csv.errors, message]
    return announce(_upload_page(me, status, csv_form=form), message or form.csv.errors[0])


@bp.post("/invitations/bulk")
@login_required
def send_invitations():
    """The CSV upload's second step: the previewed rows, with the roles chosen in the preview."""
    me = _admin()
    form = Form()
    if not form.validate_on_submit():
        abort(400)
    values = [request.form.getlist(name) for name in ("email", "name", "role")]
    if not values[0] or len({len(v) for v in values}) != 1:
        return redirect(url_for("teams.show"), 303)
    entries = [
        invitations.Entry(plain(email), plain(name)[:120], plain(role) or None)
        for email, name, role in zip(*values, strict=True)
    ]
    return _invite(me, InviteForm(permissions.grantable_roles(me, me.team)), entries, "member")


@bp.post("/invitations/price")
@login_required
def invite_price():
    """The price line under the invite box, for the number of addresses typed so far."""
    me = _admin()
    if not is_htmx():
        return redirect(url_for("teams.show"), 303)
    typed = plain(request.form.get("emails", ""), multiline=True)[:20_000]
    entries = invitations.parse_entries(typed)
    role = request.form.get("role", "member")
    return render_template("teams/_invite_price.html", **presenters.invite_price(me, entries, role))


def _invite(me, form, entries, role):
    try:
        results = invitations.invite_members(me, entries, role, now=utcnow())
    except invitations.TooManyAddressesError as error:
        return _invite_error(me, form, _limit_status(error), _limit_message(error))
    db.session.commit()
    summary, category = presenters.invite_summary(results)
    left = presenters.needing_attention(results)
    if left:
        # Those addresses stay in the box to correct, the error beside it and the line per
        # address above it; the others were invited.
        form.emails.data, form.emails.errors = left
        if not is_htmx():
            flash(summary, category)
            context = presenters.team_page(me, _list_args(), results=results, invite_form=form)
            return render_template("teams/show.html", **context)
    elif not is_htmx():  # the flashed lines are the one list: a line per address, in its style
        for line, line_category in presenters.result_lines(results):
            flash(line, line_category)
    return reply(
        me,
        summary,
        "teams/_invite.html",
        "teams/_invitations.html",
        results=results,
        invite_form=form if left else None,
        category=category,
    )


def _limit_status(error) -> int:
    return 429 if isinstance(error, invitations.InviteLimitError) else 422


def _limit_message(error) -> str:
    if isinstance(error, invitations.InviteLimitError):
        return ngettext(
            "Nothing was sent: you can invite %(num)d more person now.",
            "Nothing was sent: you can invite %(num)d more people now.",
            error.allowance,
        )
    return _(
        "At most %(max)d addresses at a time; you can invite %(left)d more now.",
        max=invitations.MAX_ADDRESSES,
        left=error.allowance,
    )


def _invite_error(me, form, status: int, message: str | None):
    """The invite box again with the message beside the field; nothing was sent."""
    db.session.rollback()
    field = form.emails
    if message and message not in field.errors:
        field.errors = [*field.errors, message]
    if is_htmx():
        context = presenters.team_page(me, presenters.ListArgs(), with_members=False)
        html = render_template("teams/_invite.html", **context, invite_form=form)
    else:
        context = presenters.team_page(me, presenters.ListArgs())
        html = render_template("teams/show.html", **context, invite_form=form)
    return announce(make_response(html, status), message or field.errors[0])


@bp.post("/invitations/expired/resend")
@login_required
def resend_expired():
    me = _admin()
    count = invitations.resend_expired(me, now=utcnow())
    db.session.commit()
    message = ngettext(
        "%(num)d expired invitation sent again, valid for %(days)d more days.",
        "%(num)d expired invitations sent again, valid for %(days)d more days.",
        count,
        days=current_app.config["INVITATION_DAYS"],
    )
    return reply(me, message, "teams/_invitations.html")


@bp.post("/invitations/expired/revoke")
@login_required
def revoke_expired():
    me = _admin()
    count = invitations.revoke_expired(me, now=utcnow())
    db.session.commit()
    message = ngettext(
        "%(num)d expired invitation revoked.", "%(num)d expired invitations revoked.", count
    )
    return reply(me, message, "teams/_invitations.html")


def _named_row(values, name: str) -> int:
    """The row a list's button names (name=invitation or name=member, value=ID): one URL per
    action, so a list builds no URL per row. No such number is no row: 404."""
    number = values.get(name, type=row_id)
    if number is None:
        abort(404)
    return number


def _resend_key() -> str:
    me = current.membership()
    # The id as the view reads it: "01" and " 1" are the same invitation, and one budget.
    invitation = request.form.get("invitation", type=row_id)
    return f"resend:{me.team_id if me else 'none'}:{invitation}"


@bp.post("/invitations/resend")
@login_required
@limiter.limit(
    lambda: current_app.config["RATELIMIT_RESEND"], key_func=_resend_key, exempt_when=_not_an_admin
)
def resend():
    me = _admin()
    invitation = invitations.resend_invitation(
        me, _named_row(request.form, "invitation"), now=utcnow()
    )
    db.session.commit()
    message = _(
        "Invitation sent again to %(email)s. The earlier link no longer works.",
        email=invitation.email,
    )
    return reply(me, message, "teams/_invitations.html")


@bp.post("/invitations/revoke")
@login_required
def revoke():
    me = _admin()
    invitation = invitations.revoke_invitation(
        me, _named_row(request.form, "invitation"), now=utcnow()
    )
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
        role=str(ROLE_LABELS[member.role]).lower(),
    )
    return reply(
        me,
        message,
        "teams/_member_rows.html",
        "teams/_seats.html",
        "teams/_invite_price.html",  # an assistant's seat is free: the price changes
        **presenters.member_row(me, member.id),
    )


@bp.get("/members/edit")
@login_required
def edit_member():
    """The member list's one editor URL: the row's button names the member (name=member
    value=ID), so the list builds no URL per row. htmx gets the editor in the row; without
    JavaScript the editor's own page."""
    membership_id = _named_row(request.args, "member")
    if not is_htmx():
        return redirect(url_for("teams.member", membership_id=membership_id), 303)
    return member(membership_id)


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
            "teams/_member_rows.html", me=me, team=me.team, **presenters.member_row(me, member.id)
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
    # The list again (its status line and pager count one fewer), the seat line and the
    # invite box's price; focus goes to the status line (data-focus on the confirm form).
    response = reply(
        me,
        message,
        "teams/_members.html",
        "teams/_seats.html",
        "teams/_invite_price.html",
        with_members=True,
    )
    return retarget(response, "#member-results", "outerHTML") if is_htmx() else response


@bp.route("/leave", methods=["GET", "POST"])
@login_required
def leave():
    me = _me()
    if not permissions.can_leave(me):
        if me is None:
            abort(403)
        # The owner pays for the team: the page says how to hand it on instead.
        return render_template("teams/leave.html", team=me.team, owner=True), 403
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
    keep = request.method == "GET" or request.form.get("keep_templates") == "1"
    if request.method == "GET" or request.form.get("confirm") != me.team.name:
        error = request.method == "POST"
        return render_template(
            "teams/delete.html",
            team=me.team,
            error=error,
            keep_templates=keep,
            template_count=team_template_count(me.team_id),
        ), 422 if error else 200
    name = me.team.name
    copied = service.delete_team(me, now=utcnow(), keep_templates=keep)
    db.session.commit()
    flash(
        _("Team %(name)s is deleted. Your own subscription continues with one seat.", name=name),
        "success",
    )
    if copied:
        flash(
            ngettext(
                "%(num)d team template is now one of your personal templates.",
                "%(num)d team templates are now among your personal templates.",
                copied,
            ),
            "success",
        )
    return redirect(url_for("teams.show"), 303)


@bp.post("/sharing")
@login_required
def set_sharing():
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
    rows = presenters.audit_entries(me.team_id, page, audit.LogFilter.from_args(request.args))
    if is_htmx():  # "Show older activity" replaces itself: focus moves to the first older entry
        return render_template("teams/_audit_rows.html", **rows, focus_first=True)
    return render_template(
        "teams/audit.html", team=me.team, **rows, **presenters.export_filters(me.team_id)
    )


def init_app(app) -> None:
    app.jinja_env.globals.update(
        role_label=lambda role: ROLE_LABELS[role],
        shown_name=audit.shown_name,
        period_total=billing.period_total,
        contact_url=lambda: url_for("sales.contact"),
    )
