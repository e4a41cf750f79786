"""The CSV downloads on the team and activity pages (admins only)."""

from flask import Blueprint, Response, abort, request
from flask_login import login_required

from portal import current, permissions
from portal.audit import service as audit
from portal.clock import utcnow
from portal.exports import service
from portal.extensions import db

bp = Blueprint("exports", __name__, url_prefix="/settings/teams")


def _admin():
    me = current.membership()
    if me is None or not permissions.can_manage_team(me, me.team):
        abort(403)
    return me


def _download(me, name: str, header: list[str], rows: list[tuple], action: str) -> Response:
    audit.record(me.team_id, action, actor=me.user, now=utcnow(), target=f"{len(rows)} rows")
    db.session.commit()
    filename = f"{name}-{utcnow():%Y-%m-%d}.csv"
    return Response(
        service.csv_lines(header, rows),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@bp.get("/members.csv")
@login_required
def members():
    me = _admin()
    rows = service.member_rows(me.team, zone=audit.clinic_zone())
    header = ["name", "email", "role", "seat", "joined", "last_active"]
    return _download(me, "members", header, rows, "export.members")


@bp.get("/activity.csv")
@login_required
def activity():
    me = _admin()
    rows = service.activity_rows(
        me.team_id, audit.LogFilter.from_args(request.args), zone=audit.clinic_zone()
    )
    header = ["time", "who", "action", "description", "target"]
    return _download(me, "activity", header, rows, "export.activity")
