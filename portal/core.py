"""The home page and the health check."""

from flask import Blueprint, redirect, url_for
from flask_login import current_user
from sqlalchemy import text

from portal.extensions import db

bp = Blueprint("core", __name__)


@bp.get("/")
def index():
    return redirect(url_for("account.show" if current_user.is_authenticated else "auth.login"))


@bp.get("/healthz")
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any database failure means "not healthy"
        db.session.rollback()
        return {"status": "unavailable", "database": "down"}, 503
    return {"status": "ok", "database": "ok"}, 200
