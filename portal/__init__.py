"""Clinic Teams portal: the application factory."""

from datetime import timedelta
from pathlib import Path

from flask import Flask, request, session, url_for
from flask_login import current_user, logout_user
from sqlalchemy import update
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from portal import (
    config,
    core,
    current,
    errors,
    i18n,
    observability,
    paths,
    permissions,
    security,
    templating,
)
from portal.account.views import bp as account_bp
from portal.auth.models import User
from portal.auth.service import return_path
from portal.auth.views import bp as auth_bp
from portal.billing import service as billing
from portal.billing.cli import billing_cli
from portal.billing.views import bp as billing_bp
from portal.clinical_sessions.views import bp as sessions_bp
from portal.clock import utcnow
from portal.db import end_request_transaction
from portal.devices import service as devices
from portal.devices.views import bp as devices_bp
from portal.email_change.views import bp as email_change_bp
from portal.exports.views import bp as exports_bp
from portal.extensions import csrf, db, limiter, login_manager, mail, migrate
from portal.forms import MAX_ID
from portal.health import worker_check_command
from portal.htmx import hx_redirect
from portal.invitations.views import bp as invitations_bp
from portal.outbox.cli import outbox_cli
from portal.ownership.views import bp as ownership_bp
from portal.personal_data.views import bp as personal_data_bp
from portal.plans.views import bp as plans_bp
from portal.sales.cli import sales_cli
from portal.sales.views import bp as sales_bp
from portal.team_templates.views import bp as templates_bp
from portal.teams import views as teams
from portal.teams.cli import teams_cli
from portal.twofa import views as two_factor
from portal.twofa.cli import two_factor_cli
from portal.worker import worker_command


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=paths.instance_path(),
        instance_relative_config=True,
        template_folder=str(paths.TEMPLATES),
        static_folder=str(paths.STATIC),
    )
    config.load(app, test_config)
    observability.init_app(app)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if app.config["PROXY_FIX_HOPS"]:
        hops = app.config["PROXY_FIX_HOPS"]
        host_hops = hops if app.config["PROXY_FIX_HOST"] else 0
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=host_hops)
    register_extensions(app)
    register_converters(app)
    register_blueprints(app)
    register_request_hooks(app)
    register_commands(app)
    register_devtools(app)
    errors.init_app(app)
    security.init_app(app)
    i18n.init_app(app)
    templating.init_app(app)
    register_template_globals(app)
    return app


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=str(paths.MIGRATIONS), render_as_batch=True)
    csrf.init_app(app)
    mail.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    login_manager.user_loader(current.load_user)


class IdConverter(IntegerConverter):
    """<int:…> up to MAX_ID: a longer number is no page (404), not a database error (500)."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def register_converters(app: Flask) -> None:
    # Before the blueprints: each rule takes its converter when it is added.
    app.url_map.converters["int"] = IdConverter


def register_blueprints(app: Flask) -> None:
    for blueprint in (
        core.bp,
        auth_bp,
        account_bp,
        devices_bp,
        billing_bp,
        teams.bp,
        invitations_bp,
        ownership_bp,
        templates_bp,
        sessions_bp,
        plans_bp,
        sales_bp,
        exports_bp,
        email_change_bp,
        personal_data_bp,
        two_factor.bp,
    ):
        app.register_blueprint(blueprint)
    teams.init_app(app)


def register_template_globals(app: Flask) -> None:
    """What templates ask about the signed-in user: the permission predicates (to hide what
    the server would refuse), their membership and their plan."""
    app.jinja_env.globals.update(
        permissions.PREDICATES,
        my_membership=current.membership,
        my_plan=lambda: billing.plan_of(current_user, current.membership()),
        trial_available=billing.trial_available,
        has_own_billing=billing.has_own_billing,
    )


# The idle timeout counts from the last request, to the minute.
SEEN_AT_RESOLUTION = 60
# "Last active" on the member list, to the hour: one small write an hour per signed-in user.
LAST_SEEN_RESOLUTION = timedelta(hours=1)


def record_last_seen(user) -> None:
    now = utcnow()
    if user.last_seen_at is None or now - user.last_seen_at >= LAST_SEEN_RESOLUTION:
        db.session.execute(update(User).where(User.id == user.id).values(last_seen_at=now))
        db.session.commit()


def register_request_hooks(app: Flask) -> None:
    @app.before_request
    def enforce_session_timeouts():
        if not current_user.is_authenticated or request.endpoint == "static":
            return None
        now = utcnow().timestamp()
        login_at, seen_at = session.get("login_at", 0), session.get("seen_at", 0)
        if (
            now - seen_at > app.config["SESSION_IDLE_SECONDS"]
            or now - login_at > app.config["PERMANENT_SESSION_LIFETIME"]
        ):
            logout_user()
            session.clear()
            return hx_redirect(url_for("auth.login", next=return_path()))
        if now - seen_at >= SEEN_AT_RESOLUTION:  # not on every request: no new cookie each time
            session["seen_at"] = now
        record_last_seen(current_user)
        record = current.user_session()
        if record is not None and devices.touch(record, now=utcnow()):
            db.session.commit()
        return None

    # After the timeouts (a timed-out session is no member): a team's 2FA rule, in one place.
    app.before_request(two_factor.enforce_team_requirement)

    @app.after_request
    def end_transaction(response):
        end_request_transaction()
        return response


def register_commands(app: Flask) -> None:
    for command in (billing_cli, worker_command, outbox_cli, teams_cli, sales_cli, two_factor_cli):
        app.cli.add_command(command)
    app.cli.add_command(worker_check_command)


def register_devtools(app: Flask) -> None:
    """In development mode, add the checkout's `/dev` pages and `dev serve`, `seed-demo`."""
    if not app.config["PORTAL_DEV"]:
        return
    # devtools (local Stripe, demo data) is development-only: a checkout has it, the wheel not.
    try:
        import devtools
    except ModuleNotFoundError as error:
        if error.name != "devtools":
            raise
        raise RuntimeError(
            "development mode (FLASK_PORTAL_DEV=1) needs a checkout's devtools package, which"
            " the installed wheel leaves out; run the checkout from its root, or unset it"
        ) from error
    devtools.init_app(app)
