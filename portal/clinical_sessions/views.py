from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from portal import current, permissions
from portal.clinical_sessions import service
from portal.clinical_sessions.forms import SessionForm
from portal.clock import utcnow
from portal.extensions import db
from portal.htmx import is_htmx, notify
from portal.i18n import gettext as _
from portal.team_templates import service as templates

bp = Blueprint("clinical_sessions", __name__, url_prefix="/sessions")


def _me():
    return current.membership()


def _index(form=None, status=200):
    me = _me()
    return render_template(
        "clinical_sessions/index.html",
        me=me,
        team=me.team if me else None,
        own=service.own_sessions(current_user),
        shared=service.shared_with_me(current_user, me),
        form=form or SessionForm(formdata=None, date=utcnow().date()),
    ), status


@bp.get("")
@login_required
def index():
    return _index()


@bp.post("")
@login_required
def create():
    me = _me()
    if not permissions.can_create_sessions(me):
        abort(403)
    form = SessionForm()
    template = None
    if form.template_id.data:
        template = templates.find_template(current_user, me, form.template_id.data)
    if template is not None and not form.title.data:
        form.title.data = template.title
    if not form.date.data:
        form.date.data = utcnow().date()
    if not form.validate_on_submit():
        return _index(form=form, status=422)
    session = service.create_session(
        current_user,
        me,
        title=form.title.data,
        on=form.date.data,
        note=form.note.data,
        template=template,
        now=utcnow(),
    )
    db.session.commit()
    flash(_("Session %(title)s started.", title=session.title), "success")
    return redirect(url_for("clinical_sessions.edit", session_id=session.id), 303)


@bp.get("/<int:session_id>")
@login_required
def show(session_id):
    me = _me()
    session = service.find_session(current_user, me, session_id, now=utcnow())
    db.session.commit()  # a teammate's view is audited
    return render_template("clinical_sessions/show.html", session=session, me=me)


@bp.route("/<int:session_id>/edit", methods=["GET", "POST"])
@login_required
def edit(session_id):
    session = service.own_session(current_user, session_id)
    form = SessionForm(obj=session)
    if form.validate_on_submit():
        service.update_session(
            session,
            title=form.title.data,
            on=form.date.data,
            note=form.note.data or "",
            now=utcnow(),
        )
        db.session.commit()
        flash(_("Session saved."), "success")
        return redirect(url_for("clinical_sessions.show", session_id=session.id), 303)
    status = 422 if form.is_submitted() else 200
    return render_template("clinical_sessions/edit.html", form=form, session=session), status


@bp.route("/<int:session_id>/delete", methods=["GET", "POST"])
@login_required
def delete(session_id):
    session = service.own_session(current_user, session_id)
    if request.method == "GET":
        return render_template("clinical_sessions/delete.html", session=session)
    db.session.delete(session)
    db.session.commit()
    flash(_("Session deleted."), "success")
    return redirect(url_for("clinical_sessions.index"), 303)


@bp.post("/<int:session_id>/share")
@login_required
def share(session_id):
    return _set_shared(session_id, True)


@bp.post("/<int:session_id>/unshare")
@login_required
def unshare(session_id):
    return _set_shared(session_id, False)


def _set_shared(session_id, shared: bool):
    me = _me()
    session = service.own_session(current_user, session_id)
    if shared:
        service.share_session(me, session, now=utcnow())
        message = _("%(title)s is shared with your team (view only).", title=session.title)
    else:
        service.unshare_session(me, session, now=utcnow())
        message = _("%(title)s is no longer shared.", title=session.title)
    db.session.commit()
    if not is_htmx():
        flash(message, "success")
        return redirect(url_for("clinical_sessions.index"), 303)
    row = render_template("clinical_sessions/_session_row.html", s=session, me=me)
    return notify(make_response(row), message)
