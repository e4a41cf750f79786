from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    url_for,
)
from flask_login import current_user, login_required

from portal import current, permissions
from portal.clock import utcnow
from portal.extensions import db, limiter
from portal.htmx import is_htmx, notify
from portal.i18n import gettext as _
from portal.ownership import service
from portal.ownership.forms import OfferForm

bp = Blueprint("ownership", __name__)


def _owner():
    me = current.membership()
    if me is None or not permissions.can_transfer_ownership(me, me.team):
        abort(403)
    return me


def _offer_page(me, *, form=None, status=200, message=None):
    """The owner's transfer section: the pending offer, or the form to make one. htmx gets
    the section alone, a plain request the page."""
    context = {
        "me": me,
        "team": me.team,
        "offer": service.pending_offer(me.team, now=utcnow()),
        "form": form or OfferForm(service.candidates(me), formdata=None),
    }
    if not is_htmx():
        if message:
            flash(message, "success")
            return redirect(url_for("ownership.new"), 303)
        return render_template("ownership/new.html", **context), status
    response = make_response(render_template("ownership/_offer.html", **context), status)
    return notify(response, message) if message else response


@bp.get("/settings/teams/ownership")
@login_required
def new():
    return _offer_page(_owner())


@bp.post("/settings/teams/ownership")
@login_required
def offer():
    me = _owner()
    form = OfferForm(service.candidates(me))
    if not form.validate_on_submit():
        return _offer_page(me, form=form, status=422)
    offer = service.offer_ownership(me, form.admin.data, now=utcnow())
    name = offer.to_user.name
    db.session.commit()
    message = _("Ownership offered to %(name)s. Nothing changes until they accept.", name=name)
    return _offer_page(me, message=message)


@bp.post("/settings/teams/ownership/cancel")
@login_required
def cancel():
    me = _owner()
    offer = service.cancel_offer(me, now=utcnow())
    name = offer.to_user.name
    db.session.commit()
    return _offer_page(me, message=_("The offer to %(name)s is cancelled.", name=name))


def _unknown_link(response) -> bool:
    return response.status_code == 404


def _load(token: str):
    """The offer behind a link, or the page (410) that says why the link no longer works."""
    offer = service.find_by_token(token)
    if offer is None:
        abort(404)
    state = service.state(offer, utcnow())
    if state != "pending":
        return offer, (render_template("ownership/gone.html", offer=offer, state=state), 410)
    return offer, None


def _show(offer, token, status=200):
    me = current.membership()
    case = service.offer_case(offer, current_user, me)
    page = render_template(
        "ownership/show.html", offer=offer, team=offer.team, token=token, case=case, me=me
    )
    return page, status


@bp.get("/ownership/<token>")
@limiter.limit(
    lambda: current_app.config["RATELIMIT_INVITATION_GUESS"],
    deduct_when=_unknown_link,
    error_message=lambda: _("Too many unknown links from your network."),
)
def show(token):
    offer, gone = _load(token)
    return gone or _show(offer, token)


@bp.post("/ownership/<token>/accept")
@login_required
def accept(token):
    offer, gone = _load(token)
    if gone:
        return _already_owner(offer) or gone
    try:
        team = service.accept_offer(offer, current_user, now=utcnow())
    except service.WrongAccountError:
        return _show(offer, token, 403)
    except service.OfferGoneError:
        db.session.rollback()
        return _already_owner(offer) or _load(token)[1] or _show(offer, token, 409)
    name = team.name
    db.session.commit()
    flash(
        _(
            "You now own %(team)s and pay for it. Check the card on file under Manage billing.",
            team=name,
        ),
        "success",
    )
    return redirect(url_for("billing.team"), 303)


def _already_owner(offer):
    """A second click on Accept: the first one already made the user the owner."""
    current.forget_membership()
    me = current.membership()
    if offer.team_id and permissions.can_transfer_ownership(me, offer.team):
        flash(_("You already own %(team)s.", team=offer.team.name), "info")
        return redirect(url_for("billing.team"), 303)
    return None


@bp.post("/ownership/<token>/decline")
@login_required
def decline(token):
    offer, gone = _load(token)
    if gone:
        return gone
    try:
        service.decline_offer(offer, current_user, now=utcnow())
    except service.WrongAccountError:
        return _show(offer, token, 403)
    except service.OfferGoneError:
        db.session.rollback()
        return _load(token)[1] or _show(offer, token, 409)
    db.session.commit()
    flash(_("You declined. %(owner)s stays the owner.", owner=offer.from_user.name), "info")
    return redirect(url_for("teams.show"), 303)
