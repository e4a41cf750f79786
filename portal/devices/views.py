"""Signing out another device, or all the others, from the account page (htmx and no-JS)."""

from flask import Blueprint, flash, make_response, redirect, render_template, url_for
from flask_login import current_user, login_required

from portal import current
from portal.auth import reauth
from portal.auth import service as auth_service
from portal.auth.views import end_browser_session
from portal.clock import utcnow
from portal.devices import presenters, service
from portal.devices.useragent import describe
from portal.extensions import db
from portal.htmx import hx_redirect, is_htmx, notify
from portal.i18n import gettext as _
from portal.i18n import ngettext

bp = Blueprint("devices", __name__, url_prefix="/settings/account/sessions")


def _reply(message: str):
    """A plain form: back to the account page's list with the message. htmx: the list again,
    the message in #flash and read out."""
    if not is_htmx():
        flash(message, "success")
        return redirect(url_for("account.show", _anchor="devices"), 303)
    context = presenters.device_list(current_user, current.user_session(), now=utcnow())
    html = render_template("devices/_sessions.html", **context)
    return notify(make_response(html), message)


@bp.post("/<int:session_id>/end")
@login_required
@reauth.limit("end-sessions")
def end(session_id):
    this = current.user_session()
    if session_id == this.id:  # "sign out" on this device's own row: log out here
        auth_service.end_session(this)
        db.session.commit()
        message = _("You are logged out on this device.")
        response = end_browser_session(hx_redirect(url_for("auth.login")))
        flash(message, "success")
        return response
    # Someone else's id, or one already ended (double click, another tab): nothing to end,
    # and the same answer for both.
    record = service.own_session(current_user.id, session_id)
    if record is None:
        return _reply(_("That device was already signed out."))
    name = describe(record.user_agent)
    ask = reauth.password_first(_("Sign out %(device)s", device=name), target="devices")
    if ask is not None:
        return ask
    auth_service.end_session(record)
    db.session.commit()
    return _reply(_("%(device)s is signed out.", device=name))


@bp.post("/end-others")
@login_required
@reauth.limit("end-sessions")
def end_others():
    ask = reauth.password_first(_("Sign out all other devices"), target="devices")
    if ask is not None:
        return ask
    count = auth_service.end_other_sessions(current_user, keep=current.user_session().id)
    db.session.commit()
    if count == 0:
        return _reply(_("No other device was signed in."))
    return _reply(
        ngettext(
            "%(num)d other device is signed out.", "%(num)d other devices are signed out.", count
        )
    )
