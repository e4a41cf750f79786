"""The home page and the health check."""

from flask import Blueprint, redirect, url_for
from flask_login import current_user

from portal import health
from portal.clock import utcnow

bp = Blueprint("core", __name__)


@bp.get("/")
def index():
    return redirect(url_for("account.show" if current_user.is_authenticated else "auth.login"))


@bp.get("/healthz")
def healthz():
    document, healthy = health.report(utcnow())
    return document, 200 if healthy else 503
