"""Change of email address: asked on the account page, confirmed and undone by emailed link.

Opening a link changes nothing (mail scanners open links): it shows a button that posts.
"""

from flask import (
    Blueprint,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required, logout_user

from portal.auth import service as auth
from portal.auth.limits import password_check_limit
from portal.clock import utcnow
from portal.email_change import service
from portal.email_change.forms import EmailChangeForm
from portal.extensions import db
from portal.htmx import announce, is_htmx
from portal.i18n import gettext as _

bp = Blueprint("email_change", __name__)


@bp.app_context_processor
def forms():
    return {"email_change_form": EmailChangeForm}


def _form(form, status=200, **extra):
    template = "email_change/_form.html" if is_htmx() else "email_change/edit.html"
    return render_template(template, email_form=form, **extra), status


@bp.get("/settings/account/email")
@login_required
def edit():
    return _form(EmailChangeForm())


@bp.post("/settings/account/email")
@login_required
@password_check_limit("email-change", lambda: _("Too many attempts to change your email address."))
def request_change():
    form = EmailChangeForm()
    if form.validate_on_submit():
        try:
            new = service.request_change(
                current_user._get_current_object(),
                password=form.current_password.data,
                new_email=form.email.data,
                now=utcnow(),
            )
        except service.WrongPasswordError as error:
            form.current_password.errors.append(str(error))
        except service.SameAddressError as error:
            form.email.errors.append(str(error))
        else:
            db.session.commit()
            if is_htmx():
                return _form(
                    EmailChangeForm(formdata=None), sent_to=new, check_inbox=_check_inbox(new)
                )
            flash(_check_inbox(new), "success")
            return redirect(url_for("account.show"), 303)
    response = make_response(_form(form, 422))
    return announce(response, _("Check the form.")) if is_htmx() else response


def _check_inbox(address: str) -> str:
    return _(
        "Check the new inbox: we sent a link to %(email)s. Your address changes when you open"
        " it (within 24 hours).",
        email=address,
    )


def _invalid():
    return render_template("auth/link_invalid.html"), 410


@bp.route("/email/confirm/<token>", methods=["GET", "POST"])
def confirm(token):
    try:
        user, new = service.check_confirm(token)
    except auth.TokenInvalidError:
        return _invalid()
    if request.method == "GET":
        return render_template("email_change/confirm.html", user=user, new_email=new)
    try:
        service.confirm_change(token, now=utcnow())
    except service.AddressTakenError as error:
        db.session.rollback()
        return render_template(
            "email_change/confirm.html", user=user, new_email=new, error=str(error)
        ), 409
    db.session.commit()
    flash(_("Your email address is now %(email)s.", email=new), "success")
    if current_user.is_authenticated and current_user.id == user.id:
        return redirect(url_for("account.show"), 303)
    return redirect(url_for("auth.login", email=new), 303)


@bp.route("/email/undo/<token>", methods=["GET", "POST"])
def undo(token):
    try:
        user, old = service.check_undo(token)
    except auth.TokenInvalidError:
        return _invalid()
    if request.method == "GET":
        return render_template("email_change/undo.html", user=user, old_email=old)
    try:
        service.undo_change(token, now=utcnow())
    except service.AddressTakenError as error:
        db.session.rollback()
        return render_template(
            "email_change/undo.html", user=user, old_email=old, error=str(error)
        ), 409
    reset = auth.make_reset_token(user)
    db.session.commit()
    if current_user.is_authenticated and current_user.id == user.id:
        logout_user()
    flash(
        _(
            "Your email address is %(email)s again and every session is signed out."
            " Choose a new password now.",
            email=old,
        ),
        "success",
    )
    return redirect(url_for("auth.reset_password", token=reset), 303)
