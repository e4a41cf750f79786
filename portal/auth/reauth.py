"""Confirm it is you: ending other sessions asks for the password again unless the user typed
it in the last 15 minutes (log-in counts), as OWASP ASVS 5.0 7.5.2 asks. A stolen session
cannot sign the real user out of their devices without knowing the password.

The action's own form posts again with a password field; a view calls `password_first()` and
carries on when it returns None."""

from datetime import datetime, timedelta

from flask import make_response, render_template, request, session
from flask_login import current_user

from portal.auth import service
from portal.auth.forms import ConfirmPasswordForm
from portal.auth.limits import password_check_limit
from portal.clock import utcnow
from portal.htmx import announce, is_htmx
from portal.i18n import gettext as _

FRESH_FOR = timedelta(minutes=15)
_CONFIRMED_AT = "password_at"
FIELD = ConfirmPasswordForm.FIELD


def is_fresh(now: datetime) -> bool:
    """The password was typed (to log in, or to confirm) within FRESH_FOR."""
    last = max(session.get(_CONFIRMED_AT, 0), session.get("login_at", 0))
    return now.timestamp() - last < FRESH_FOR.total_seconds()


def limit(scope: str):
    """The password budget of the forms that check it, spent only by a typed password (the
    action itself, while fresh, is not limited)."""
    return password_check_limit(
        scope,
        lambda: _("Too many wrong passwords. Try again later."),
        exempt_when=lambda: not current_user.is_authenticated or FIELD not in request.form,
    )


def password_first(action: str, *, target: str):
    """None when the user may go on; otherwise the page (htmx: the fragment replacing
    `#target`) that asks for the password and posts to this URL again. `action` is the
    button's wording, such as "Sign out all other devices"."""
    now = utcnow()
    if is_fresh(now):
        return None
    typed = FIELD in request.form
    form = ConfirmPasswordForm() if typed else ConfirmPasswordForm(formdata=None)
    if typed and form.validate():
        if service.authenticate(current_user.email, form.password.data) is not None:
            session[_CONFIRMED_AT] = now.timestamp()
            return None
        form.password.errors.append(_("This is not your current password."))
    context = {
        "form": form,
        "action": action,
        "target": target,
        "url": request.path,
        "minutes": FRESH_FOR.seconds // 60,
    }
    if not is_htmx():
        return render_template("auth/confirm_password.html", **context), 422 if typed else 200
    response = render_template("auth/_confirm_password.html", **context)
    message = _("Check the form.") if typed else _("Enter your password to continue.")
    return announce(make_response(response, 422 if typed else 200), message)
