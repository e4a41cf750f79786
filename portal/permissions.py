"""Who may do what: one predicate per rule, used by views (to enforce) and templates (to hide)."""

from flask import Flask

from portal.auth.models import User


def can_manage_own_billing(user: User) -> bool:
    from portal.billing.service import own_subscription

    return user.is_authenticated and own_subscription(user) is not None


PREDICATES = {
    "can_manage_own_billing": can_manage_own_billing,
}


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(PREDICATES)
