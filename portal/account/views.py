from flask import Blueprint, flash, redirect, render_template, session, url_for
from flask_login import current_user, login_required

from portal import current
from portal.auth import service as auth_service
from portal.auth.forms import ChangePasswordForm, ProfileForm
from portal.auth.limits import password_check_limit
from portal.billing import service as billing
from portal.clock import utcnow
from portal.devices import presenters as devices
from portal.devices import service as device_sessions
from portal.extensions import db
from portal.i18n import gettext as _
from portal.referrals import service as referrals
from portal.twofa import service as two_factor

bp = Blueprint("account", __name__, url_prefix="/settings/account")


def _page(profile=None, password=None, status=200):
    return render_template(
        "account/show.html",
        profile_form=profile or ProfileForm(name=current_user.name),
        password_form=password or ChangePasswordForm(),
        plan=billing.plan_of(current_user, current.membership()),
        trial_available=billing.trial_available(current_user),
        prices=billing.tier_prices,
        affiliate=referrals.has_affiliate_link(current_user),
        referrals=referrals.referrals_of(current_user),
        **devices.device_list(current_user, current.user_session(), now=utcnow()),
        two_factor_on=two_factor.is_enabled(current_user),
    ), status


@bp.get("")
@login_required
def show():
    return _page()


@bp.post("/profile")
@login_required
def update_profile():
    form = ProfileForm()
    if not form.validate_on_submit():
        return _page(profile=form, status=422)
    current_user.name = form.name.data.strip()
    db.session.commit()
    flash(_("Your profile is saved."), "success")
    return redirect(url_for("account.show"), 303)


@bp.post("/password")
@login_required
@password_check_limit("user", lambda: _("Too many attempts to change your password."))
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        if auth_service.authenticate(user.email, form.current_password.data) is None:
            form.current_password.errors.append(_("This is not your current password."))
        else:
            record = current.user_session()
            try:
                auth_service.set_password(user, form.password.data, keep=record.id)
            except auth_service.PasswordPolicyError as error:
                form.password.errors.append(str(error))
            else:
                # This device stays signed in, under a new session id.
                session["sid"] = device_sessions.rotate(record)
                db.session.commit()
                flash(_("Your password is changed. You are logged out everywhere else."), "success")
                return redirect(url_for("account.show"), 303)
    return _page(password=form, status=422)
