from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from portal import current
from portal.auth import service as auth
from portal.auth.views import start_session
from portal.billing import service as billing
from portal.clock import utcnow
from portal.exceptions import ConflictError
from portal.extensions import db, limiter
from portal.i18n import gettext as _
from portal.i18n import select_locale
from portal.invitations import service
from portal.invitations.forms import InvitationSignupForm

bp = Blueprint("invitations", __name__, url_prefix="/invitations")


def _invitation_key() -> str:
    return f"invitation-signup:{service.hash_token(request.view_args['token'])}"


def _team_key() -> str:
    invitation, _superseded = service.find_by_token(request.view_args["token"])
    return f"invitation-signup-team:{invitation.team_id if invitation else 'none'}"


def _unknown_link(response) -> bool:
    return response.status_code == 404


def _load(token: str):
    """The invitation behind a link, or the page that says why the link no longer works."""
    invitation, superseded = service.find_by_token(token)
    if invitation is None:
        abort(404)
    state = "superseded" if superseded else service.state(invitation, utcnow())
    if state != "pending":
        page = "used" if state in ("accepted", "declined") else state
        return invitation, (render_template(f"invitations/{page}.html", invitation=invitation), 410)
    return invitation, None


def _context(invitation, token, **extra):
    """What the invitee sees: the team, the inviter, the role, and what happens to their plan."""
    me = current.membership()
    case = service.invitation_case(invitation, current_user, me)
    plan = billing.plan_of(current_user, me) if current_user.is_authenticated else None
    joiner = billing.joiner_preview(current_user) if case == "accept" else None
    return {
        "joiner": joiner,
        "invitation": invitation,
        "team": invitation.team,
        "token": token,
        "case": case,
        "me": me,
        "plan": plan,
        "form": extra.pop("form", None) or InvitationSignupForm(name=invitation.name),
        "now": utcnow(),
        **extra,
    }


@bp.get("/<token>")
@limiter.limit(
    lambda: current_app.config["RATELIMIT_INVITATION_GUESS"],
    deduct_when=_unknown_link,
    error_message=lambda: _("Too many unknown invitation links from your network."),
)
def show(token):
    invitation, gone = _load(token)
    if gone:
        return gone
    return render_template("invitations/show.html", **_context(invitation, token))


@bp.post("/<token>/accept")
@login_required
def accept(token):
    invitation, gone = _load(token)
    if gone:
        return _already_joined(invitation) or gone
    try:
        service.accept_invitation(invitation, current_user, now=utcnow())
    except service.WrongAccountError:
        return render_template("invitations/show.html", **_context(invitation, token)), 403
    except service.AlreadyInTeamError:
        db.session.rollback()
        current.forget_membership()
        return _already_joined(invitation) or (
            render_template("invitations/show.html", **_context(invitation, token)),
            409,
        )
    except service.TeamClosedError:
        db.session.rollback()
        return render_template("invitations/closed.html", invitation=invitation), 409
    except service.InvitationGoneError:
        db.session.rollback()
        return _already_joined(invitation) or _load(token)[1] or abort(410)
    team_name = invitation.team.name
    db.session.commit()
    flash(_("Welcome to %(team)s!", team=team_name), "success")
    return redirect(url_for("teams.show"), 303)


def _already_joined(invitation):
    """A second click on Accept: the first one already made the user a member."""
    if not current_user.is_authenticated:
        return None
    current.forget_membership()
    me = current.membership()
    if me is not None and me.team_id == invitation.team_id:
        flash(_("You are already a member of %(team)s.", team=invitation.team.name), "info")
        return redirect(url_for("teams.show"), 303)
    return None


@bp.post("/<token>/decline")
def decline(token):
    invitation, gone = _load(token)
    if gone:
        return gone
    if current_user.is_authenticated and current_user.email != invitation.email:
        abort(403)
    service.decline_invitation(
        invitation, now=utcnow(), user=current_user if current_user.is_authenticated else None
    )
    db.session.commit()
    return render_template("invitations/declined.html", invitation=invitation)


@bp.post("/<token>/signup")
@limiter.limit(
    lambda: current_app.config["RATELIMIT_INVITATION_SIGNUP"],
    key_func=_invitation_key,
    error_message=lambda: _("Too many sign-up attempts with this invitation."),
)
@limiter.limit(
    lambda: current_app.config["RATELIMIT_INVITATION_SIGNUP_TEAM"],
    key_func=_team_key,
    error_message=lambda: _("Too many sign-ups to this team."),
)
def signup(token):
    invitation, gone = _load(token)
    if gone:
        return gone
    if current_user.is_authenticated:
        return redirect(url_for("invitations.show", token=token), 303)
    form = InvitationSignupForm()
    if form.validate_on_submit():
        try:
            user, _membership = service.sign_up_and_accept(
                invitation,
                name=form.name.data,
                password=form.password.data,
                locale=select_locale(),  # the language the sign-up page was in
                now=utcnow(),
            )
        except auth.PasswordPolicyError as error:
            form.password.errors.append(str(error))
        except ConflictError:
            db.session.rollback()
            return redirect(url_for("invitations.show", token=token), 303)
        except service.TeamClosedError:
            db.session.rollback()
            return render_template("invitations/closed.html", invitation=invitation), 409
        else:
            start_session(user)
            team_name = invitation.team.name
            db.session.commit()
            flash(_("Welcome to %(team)s!", team=team_name), "success")
            return redirect(url_for("teams.show"), 303)
    return render_template("invitations/show.html", **_context(invitation, token, form=form)), 422
