"""Two-step sign-in pages: set-up, recovery codes, turning it off, the log-in code step, the
team rule (admins), and the one request hook that holds members of such a team to set-up."""

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required

from portal import current, permissions
from portal.auth.service import safe_next
from portal.auth.views import PENDING, pending_user, start_session
from portal.clock import utcnow
from portal.exceptions import ConflictError
from portal.extensions import db, limiter
from portal.htmx import hx_redirect, is_htmx
from portal.i18n import gettext as _
from portal.i18n import ngettext
from portal.twofa import service
from portal.twofa.forms import CodeForm, ConfirmForm, DisableForm, LoginCodeForm

bp = Blueprint("twofa", __name__)
ACCOUNT = "/settings/account/two-factor"

# What a member of a team that requires two-step sign-in may reach before setting it up.
ALLOWED_UNTIL_SET_UP = frozenset(
    {
        "twofa.setup",
        "twofa.confirm",
        "twofa.login",
        "auth.logout",
        "auth.set_language",
        "core.healthz",
        "static",
    }
)


def enforce_team_requirement():
    """before_request: a member of a team that requires two-step sign-in, without it, is sent
    to its set-up page from everywhere else."""
    if request.endpoint in ALLOWED_UNTIL_SET_UP or not current_user.is_authenticated:
        return None
    if not service.blocks(current_user, current.membership()):
        return None
    return hx_redirect(url_for("twofa.setup"))


def _key() -> str:
    """One budget of failed codes per account, for the log-in step and the settings forms."""
    user_id = current_user.id if current_user.is_authenticated else None
    if user_id is None:
        pending = session.get(PENDING)
        user_id = pending.get("user_id") if isinstance(pending, dict) else None
    return f"two-factor:{user_id or request.remote_addr}"


def _failed(response) -> bool:
    return response.status_code == 422


def _limited(view):
    return limiter.limit(
        lambda: current_app.config["RATELIMIT_TWO_FACTOR"],
        key_func=_key,
        methods=["POST"],
        deduct_when=_failed,
        error_message=lambda: _("Too many wrong codes for this account."),
    )(view)


def _page(panel: str, status: int = 200, **context):
    """The account's two-step sign-in page, or for htmx its panel (#two-factor) alone."""
    user = current_user._get_current_object()
    context.setdefault("enabled", service.is_enabled(user))
    context.setdefault("required", service.blocks(user, current.membership()))
    template = "twofa/_panel.html" if is_htmx() else "twofa/show.html"
    response = make_response(render_template(template, panel=panel, **context), status)
    if panel == "codes":  # recovery codes in plain text: never kept by a cache or the history
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.get(ACCOUNT)
@login_required
def show():
    user = current_user._get_current_object()
    if not service.is_enabled(user):
        return _page("off")
    return _page(
        "on",
        codes_left=service.recovery_codes_left(user),
        code_form=CodeForm(prefix="regenerate"),
        disable_form=DisableForm(prefix="disable"),
    )


def _setup_page(form=None, status=200):
    user = current_user._get_current_object()
    secret = service.begin_setup(user, now=utcnow(), shown=session.get("twofa_setup"))
    db.session.commit()
    session["twofa_setup"] = service.fingerprint(secret)
    uri = service.provisioning_uri(user, secret)
    return _page(
        "setup",
        status,
        qr=service.qr_svg(uri),
        secret=service.grouped(secret),
        form=form or ConfirmForm(),
    )


@bp.get(ACCOUNT + "/setup")
@login_required
def setup():
    if service.is_enabled(current_user):
        return redirect(url_for("twofa.show"), 303)
    return _setup_page()


@bp.post(ACCOUNT + "/setup")
@login_required
@_limited
def confirm():
    user = current_user._get_current_object()
    if service.is_enabled(user):
        return hx_redirect(url_for("twofa.show"))
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            codes = service.confirm_setup(user, form.code.data, now=utcnow())
        except service.WrongCodeError as error:
            form.code.errors.append(str(error))
        else:
            db.session.commit()
            return _page("codes", codes=codes, just_enabled=True, enabled=True, required=False)
    db.session.rollback()
    return _setup_page(form, 422)


@bp.post(ACCOUNT + "/recovery-codes")
@login_required
@_limited
def regenerate():
    user = current_user._get_current_object()
    if not service.is_enabled(user):
        return hx_redirect(url_for("twofa.show"))
    form = CodeForm(prefix="regenerate")
    if form.validate_on_submit():
        try:
            codes = service.regenerate_recovery_codes(user, form.code.data, now=utcnow())
        except service.WrongCodeError as error:
            form.code.errors.append(str(error))
        else:
            db.session.commit()
            return _page("codes", codes=codes)
    return _page(
        "on",
        422,
        codes_left=service.recovery_codes_left(user),
        code_form=form,
        disable_form=DisableForm(prefix="disable", formdata=None),
    )


@bp.post(ACCOUNT + "/disable")
@login_required
@_limited
def disable():
    user = current_user._get_current_object()
    form = DisableForm(prefix="disable")
    if form.validate_on_submit():
        try:
            service.disable(user, form.password.data, form.code.data, now=utcnow())
        except service.WrongPasswordError as error:
            form.password.errors.append(str(error))
        except service.WrongCodeError as error:
            form.code.errors.append(str(error))
        except ConflictError:
            return hx_redirect(url_for("twofa.show"))
        else:
            db.session.commit()
            flash(_("Two-step sign-in is off. We emailed you about it."), "success")
            return hx_redirect(url_for("account.show"))
    return _page(
        "on",
        422,
        codes_left=service.recovery_codes_left(user),
        code_form=CodeForm(prefix="regenerate", formdata=None),
        disable_form=form,
    )


# -- the log-in step --
@bp.route("/login/2fa", methods=["GET", "POST"])
@_limited
def login():
    user = pending_user()
    if user is None:
        session.pop(PENDING, None)
        flash(_("Log in again: the code step waits only a few minutes."), "info")
        return redirect(url_for("auth.login", next=request.args.get("next") or None), 303)
    form = LoginCodeForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        used = service.check(user, form.code.data, now=utcnow())
        if used is not None:
            start_session(user)
            if used == "recovery":
                left = service.recovery_codes_left(user)
                flash(
                    ngettext(
                        "You used a recovery code: %(num)d is left. Make new ones on the"
                        " two-step sign-in page.",
                        "You used a recovery code: %(num)d are left. Make new ones on the"
                        " two-step sign-in page if you run low.",
                        left,
                    ),
                    "info",
                )
            db.session.commit()
            return redirect(safe_next(form.next.data, url_for("account.show")), 303)
        db.session.rollback()
        form.code.errors.append(_("That code is not right, or it was used already."))
    status = 422 if form.is_submitted() else 200
    return render_template("twofa/login.html", form=form), status


# -- the team rule --
def _rule_admin():
    me = current.membership()
    if me is None or not permissions.can_require_two_factor(me, me.team):
        abort(403)
    return me


@bp.get("/settings/teams/two-factor")
@login_required
def team():
    """The confirm step: who has not set it up yet, before the admin requires it."""
    me = _rule_admin()
    return render_template(
        "twofa/team.html",
        team=me.team,
        missing=service.members_without(me.team),
        own_enabled=service.is_enabled(me.user),
    )


@bp.post("/settings/teams/two-factor")
@login_required
def set_team_requirement():
    me = _rule_admin()
    required = request.form.get("required") == "1"
    try:
        emailed = service.set_requirement(me, required, now=utcnow())
    except ConflictError as error:
        db.session.rollback()
        flash(str(error), "error")
        return hx_redirect(url_for("twofa.team"))
    db.session.commit()
    if required and not emailed:
        message = _("Two-step sign-in is now required. Everyone in the team uses it already.")
    elif required:
        message = ngettext(
            "Two-step sign-in is now required. We emailed the %(num)d member who has not set it"
            " up.",
            "Two-step sign-in is now required. We emailed the %(num)d members who have not set"
            " it up.",
            len(emailed),
        )
    else:
        message = _("Two-step sign-in is no longer required.")
    flash(message, "success")
    return hx_redirect(url_for("teams.edit_settings"))
