"""The rate limit of the forms that check the signed-in user's password (password and email
change, account deletion, confirming it is you before ending sessions): one budget per form
and account, RATELIMIT_PASSWORD_CHANGE."""

from flask import current_app
from flask_login import current_user

from portal.extensions import limiter


def password_check_limit(scope: str, error_message, exempt_when=None):
    return limiter.limit(
        lambda: current_app.config["RATELIMIT_PASSWORD_CHANGE"],
        key_func=lambda: f"{scope}:{current_user.id}",
        error_message=error_message,
        exempt_when=exempt_when,
    )
