"""Export my data (a JSON download) and Delete my account, from the account page."""

import json

from flask import (
    Blueprint,
    Response,
    make_response,
    render_template,
    session,
    url_for,
)
from flask_login import current_user, login_required, logout_user

from portal import current
from portal.auth.limits import password_check_limit
from portal.billing import service as billing
from portal.clock import utcnow
from portal.extensions import db
from portal.htmx import announce, hx_redirect, is_htmx
from portal.i18n import gettext as _
from portal.personal_data import service
from portal.personal_data.forms import DeleteAccountForm, DeleteAccountWithCodeForm
from portal.twofa import service as twofa

bp = Blueprint("personal_data", __name__)


@bp.get("/settings/account/export")
@login_required
def export():
    now = utcnow()
    data = service.export(current_user._get_current_object(), now=now)
    return Response(
        json.dumps(data, ensure_ascii=False, indent=2) + "\n",
        mimetype="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="clinic-teams-my-data-{now:%Y-%m-%d}.json"',
            "Cache-Control": "no-store",
        },
    )


def _page(form, status=200, refusal=None):
    user = current_user._get_current_object()
    if refusal is None:
        try:
            service.check_deletion(user)
        except service.OwnsTeamError as error:
            refusal = str(error)
    own = billing.own_subscription(user)
    context = {
        "form": form,
        "refusal": refusal,
        "own_plan": billing.PLAN_NAMES[own.plan] if own is not None else None,
        "membership": current.membership(),
    }
    if is_htmx() and status != 200:
        return render_template("personal_data/_delete_form.html", **context), status
    return render_template("personal_data/delete.html", **context), status


def _form():
    user = current_user._get_current_object()
    return DeleteAccountWithCodeForm() if twofa.is_enabled(user) else DeleteAccountForm()


@bp.get("/settings/account/delete")
@login_required
def confirm_delete():
    return _page(_form())


@bp.post("/settings/account/delete")
@login_required
@password_check_limit("delete-account", lambda: _("Too many attempts to delete your account."))
def delete():
    form = _form()
    if not form.validate_on_submit():
        return _reply_invalid(form)
    locale = current_user.locale
    code = form.code.data if "code" in form else None
    try:
        service.delete_account(
            current_user._get_current_object(),
            password=form.password.data,
            code=code,
            now=utcnow(),
        )
    except service.DeletionRefused as error:
        db.session.rollback()
        if error.field is None:  # about the account, not the form (it owns a team)
            if is_htmx():  # the whole page says why and where to go instead
                return hx_redirect(url_for("personal_data.confirm_delete"), 409)
            return _page(form, 409, refusal=str(error))
        getattr(form, error.field).errors.append(str(error))
        return _reply_invalid(form)
    db.session.commit()
    logout_user()
    session.clear()
    if locale:
        session["locale"] = locale  # the goodbye page in the account's language
    response = hx_redirect(url_for("personal_data.goodbye"))
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


def _reply_invalid(form):
    response = make_response(_page(form, 422))
    return announce(response, _("Check the form.")) if is_htmx() else response


@bp.get("/goodbye")
def goodbye():
    return render_template("personal_data/goodbye.html")
