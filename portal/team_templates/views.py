from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from portal import current
from portal.clock import utcnow
from portal.extensions import db
from portal.forms import plain
from portal.htmx import is_htmx
from portal.i18n import gettext as _
from portal.team_templates import service
from portal.team_templates.forms import TemplateForm

bp = Blueprint("team_templates", __name__, url_prefix="/templates")


def _me():
    return current.membership()


def _editable(template_id):
    """The actor's membership and a template they may change (404 if unseen, 403 if not theirs)."""
    me = _me()
    template = service.find_template(current_user, me, template_id)
    if not service.can_edit(current_user, me, template):
        abort(403)
    return me, template


def _index(form=None, team_form=None, status=200):
    me = _me()
    query = plain(request.args.get("q"))
    context = {
        "me": me,
        "team": me.team if me else None,
        "query": query,
        "team_templates": service.team_templates(me, query),
    }
    if is_htmx() and request.method == "GET":
        return render_template("team_templates/_team_list.html", **context)
    return render_template(
        "team_templates/index.html",
        personal=service.personal_templates(current_user),
        form=form or TemplateForm(formdata=None),
        team_form=team_form or TemplateForm(formdata=None, prefix="team"),
        **context,
    ), status


@bp.get("")
@login_required
def index():
    return _index()


@bp.post("")
@login_required
def create():
    for_team = request.form.get("scope") == "team"
    # The two forms on the page differ by prefix, so their fields have unique ids.
    form = TemplateForm(prefix="team") if for_team else TemplateForm()
    if not form.validate_on_submit():
        return _index(team_form=form, status=422) if for_team else _index(form=form, status=422)
    template = service.save_template(
        current_user, _me(), fields=form.data, for_team=for_team, now=utcnow()
    )
    db.session.commit()
    flash(_("Template %(title)s saved.", title=template.title), "success")
    return redirect(url_for("team_templates.show", template_id=template.id), 303)


@bp.get("/<int:template_id>")
@login_required
def show(template_id):
    me = _me()
    template = service.find_template(current_user, me, template_id)
    return render_template(
        "team_templates/show.html",
        template=template,
        me=me,
        can_edit=service.can_edit(current_user, me, template),
    )


@bp.route("/<int:template_id>/edit", methods=["GET", "POST"])
@login_required
def edit(template_id):
    me, template = _editable(template_id)
    form = TemplateForm(obj=template)
    if form.validate_on_submit():
        service.save_template(
            current_user, me, fields=form.data, for_team=False, now=utcnow(), template=template
        )
        db.session.commit()
        flash(_("Template %(title)s saved.", title=template.title), "success")
        return redirect(url_for("team_templates.show", template_id=template.id), 303)
    status = 422 if form.is_submitted() else 200
    return render_template("team_templates/edit.html", form=form, template=template), status


@bp.route("/<int:template_id>/delete", methods=["GET", "POST"])
@login_required
def delete(template_id):
    me, template = _editable(template_id)
    if request.method == "GET":
        return render_template("team_templates/delete.html", template=template)
    title = template.title
    service.delete_template(current_user, me, template, now=utcnow())
    db.session.commit()
    flash(_("Template %(title)s deleted.", title=title), "success")
    return redirect(url_for("team_templates.index"), 303)


@bp.post("/<int:template_id>/copy")
@login_required
def copy(template_id):
    template = service.find_template(current_user, _me(), template_id)
    copy = service.copy_to_personal(current_user, template, now=utcnow())
    db.session.commit()
    flash(_("Copied to your templates. Your copy no longer changes with the team's."), "success")
    return redirect(url_for("team_templates.show", template_id=copy.id), 303)
