"""Error pages: a clear page in the user's language, never a stack trace."""

import time

from flask import make_response, render_template
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, SecurityError

from portal.exceptions import DomainError, NotAllowedError, NotFoundError
from portal.extensions import db, limiter
from portal.htmx import is_htmx, retarget
from portal.i18n import gettext as _
from portal.i18n import ngettext


def _render(status: int, title: str, message: str):
    if is_htmx():
        # htmx swaps error responses too (see the htmx-config meta tag): show them in #flash.
        response = make_response(
            render_template("errors/_message.html", title=title, message=message), status
        )
        return retarget(response, "#flash")
    return render_template("errors/page.html", title=title, message=message), status


def init_app(app) -> None:
    @app.errorhandler(SecurityError)
    def untrusted_host(error):
        # A Host header outside TRUSTED_HOSTS: no URL can be built for it, so no page either.
        return "Unknown host.", 400, {"Content-Type": "text/plain; charset=utf-8"}

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return _render(
            400,
            _("Your page expired"),
            _("For your security the form expired. Reload the page and try again."),
        )

    @app.errorhandler(429)
    def too_many(error):
        """Say what was limited and when to try again (the Retry-After header says it too)."""
        limited = isinstance(error, RateLimitExceeded) and error.limit.error_message
        what = error.description if limited else _("You have tried this too many times.")
        window = limiter.current_limit
        minutes = max(1, round((window.reset_at - time.time()) / 60)) if window else 1
        when = ngettext("Try again in %(num)d minute.", "Try again in %(num)d minutes.", minutes)
        return _render(429, _("Too many attempts"), f"{what} {when} {_('Nothing was changed.')}")

    @app.errorhandler(DomainError)
    def domain_error(error):
        db.session.rollback()
        if isinstance(error, NotFoundError):
            return _render(
                404, _("Page not found"), _("We could not find this page. Check the link.")
            )
        if isinstance(error, NotAllowedError):
            return _render(
                403, _("Not allowed"), _("You do not have access to this page or action.")
            )
        return _render(409, _("Not possible right now"), str(error))

    @app.errorhandler(HTTPException)
    def http_error(error):
        messages = {
            403: (_("Not allowed"), _("You do not have access to this page or action.")),
            404: (_("Page not found"), _("We could not find this page. Check the link.")),
            405: (_("Not allowed"), _("This action is not available here.")),
            413: (
                _("Too much data"),
                _(
                    "What you sent is larger than %(size)d MB. Go back and send less at a time.",
                    size=app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024),
                ),
            ),
        }
        title, message = messages.get(
            error.code, (_("Something went wrong"), _("The request could not be completed."))
        )
        return _render(error.code or 500, title, message)

    @app.errorhandler(Exception)
    def server_error(error):
        db.session.rollback()
        app.logger.exception("unhandled error")
        return _render(
            500,
            _("Something went wrong"),
            _(
                "Nothing was changed. Try again in a moment; if it keeps happening, contact support."
            ),
        )
