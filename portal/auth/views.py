from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user

from portal import current
from portal.auth import reauth, service
from portal.auth.forms import ForgotPasswordForm, LoginForm, ResetPasswordForm, SignupForm
from portal.auth.models import User
from portal.clock import utcnow
from portal.devices import service as devices
from portal.extensions import db, limiter, login_manager
from portal.forms import plain
from portal.htmx import hx_redirect, is_htmx
from portal.i18n import gettext as _
from portal.i18n import select_locale
from portal.invitations.service import find_by_token, state
from portal.links import public_url
from portal.outbox.service import email_user
from portal.referrals.service import record_signup as record_referral
from portal.twofa import service as two_factor

bp = Blueprint("auth", __name__)


def _login_key() -> str:
    return f"{request.remote_addr}|{service.normalize_email(request.form.get('email', ''))}"


def start_session(user) -> None:
    """Log in with a new session, so a session id planted before login is worthless: a new
    session record (this device in the account page's list), its random id in the cookie."""
    locale = session.get("locale")
    session.clear()
    if locale and not user.locale:
        user.locale = locale
    now = utcnow()
    devices.delete_expired(now=now, user_id=user.id)
    record, token = devices.start(
        user.id, user_agent=request.user_agent.string, ip=request.remote_addr, now=now
    )
    login_user(user)
    session["sid"] = token
    current.set_user_session(record)
    user.last_seen_at = now
    session["login_at"] = session["seen_at"] = now.timestamp()


def end_browser_session(response):
    """Forget the signed-in state in this browser (its record is already ended). The language
    stays, so the log-in page that follows speaks it."""
    locale = current_user.locale if current_user.is_authenticated else session.get("locale")
    logout_user()
    session.clear()
    if locale:
        session["locale"] = locale
    response.headers["Clear-Site-Data"] = '"cache", "storage"'
    return response


# Between the password and the code of a two-step log-in the session holds only this: the
# user's id and when the password was right. It is not a login (current_user stays anonymous).
PENDING = "two_factor_pending"


def begin_second_step(user) -> None:
    """The password was right and the account uses two-step sign-in: remember whose code the
    next step asks for, in a fresh session (nothing of an earlier one survives but the locale)."""
    locale = session.get("locale")
    session.clear()
    if locale:
        session["locale"] = locale
    session[PENDING] = {"user_id": user.id, "at": utcnow().timestamp()}


def pending_user():
    """The user whose code the log-in step waits for, while the few minutes last; else None."""
    pending = session.get(PENDING)
    if not isinstance(pending, dict):
        return None
    age = utcnow().timestamp() - float(pending.get("at", 0))
    if not 0 <= age <= current_app.config["TWO_FACTOR_LOGIN_SECONDS"]:
        session.pop(PENDING, None)
        return None
    user = db.session.get(User, pending.get("user_id"))
    return user if user is not None and two_factor.is_enabled(user) else None


def send_verification(user, *, now) -> None:
    email_user(
        user,
        "verify_email",
        key=f"verify:{user.id}:{now.timestamp()}",
        link=public_url("auth.verify", token=service.make_verify_token(user)),
    )


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["RATELIMIT_SIGNUP"],
    methods=["POST"],
    error_message=lambda: _("Too many sign-ups from your network."),
)
def signup():
    form = SignupForm(ref=request.args.get("ref", ""))
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render_template("auth/signup.html", form=form), status
    now = utcnow()
    user, created = service.sign_up(
        name=form.name.data,
        email=form.email.data,
        password=form.password.data,
        locale=select_locale(),  # the language the sign-up page was in
        now=now,
    )
    if created:
        record_referral(user, form.ref.data, now=now)
        send_verification(user, now=now)
    else:
        # Same answer as for a new address, so the form does not reveal who has an account.
        email_user(
            user,
            "account_exists",
            key=f"exists:{user.id}:{now.timestamp()}",
            login_link=public_url("auth.login"),
            reset_link=public_url("auth.forgot_password"),
        )
    db.session.commit()
    return render_template("auth/check_inbox.html", email=service.normalize_email(form.email.data))


def _account_key() -> str:
    return f"login-account:{service.normalize_email(request.form.get('email', ''))}"


def _ip_key() -> str:
    return f"login-ip:{request.remote_addr}"


def _failed(response) -> bool:
    return response.status_code != 303


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["RATELIMIT_LOGIN"],
    key_func=_login_key,
    methods=["POST"],
    error_message=lambda: _("Too many log-in attempts for this address."),
)
@limiter.limit(
    lambda: current_app.config["RATELIMIT_LOGIN_ACCOUNT"],
    key_func=_account_key,
    methods=["POST"],
    deduct_when=_failed,
    error_message=lambda: _("Too many failed log-ins to this account."),
)
@limiter.limit(
    lambda: current_app.config["RATELIMIT_LOGIN_IP"],
    key_func=_ip_key,
    methods=["POST"],
    deduct_when=_failed,
    error_message=lambda: _("Too many failed log-ins from your network."),
)
def login():
    form = LoginForm(email=request.args.get("email", ""), next=request.args.get("next", ""))
    if form.validate_on_submit():
        user = service.authenticate(form.email.data, form.password.data)
        if user is not None and not user.is_verified and _invited_here(user, form.next.data):
            user.email_verified_at = utcnow()  # the invitation link was delivered to this address
        if user is not None and user.is_verified and two_factor.is_enabled(user):
            begin_second_step(user)
            db.session.commit()
            return redirect(url_for("twofa.login", next=form.next.data or None), 303)
        if user is not None and user.is_verified:
            start_session(user)
            db.session.commit()
            return redirect(service.safe_next(form.next.data, url_for("account.show")), 303)
        if user is not None:
            db.session.commit()
            return render_template("auth/unverified.html", email=user.email), 403
        form.password.errors.append(_("Invalid email or password."))
    status = 422 if form.is_submitted() else 200
    return render_template("auth/login.html", form=form), status


def _invited_here(user, next_path: str | None) -> bool:
    """Logging in on the way to a pending invitation for this very address."""
    prefix = "/invitations/"
    if not next_path or not next_path.startswith(prefix):
        return False
    invitation, superseded = find_by_token(next_path[len(prefix) :].split("/", 1)[0])
    return (
        invitation is not None
        and not superseded
        and invitation.email == user.email
        and state(invitation, utcnow()) == "pending"
    )


@bp.post("/logout")
def logout():
    """Log out on this device; the user's other devices stay signed in."""
    record = current.user_session()
    if record is not None:
        service.end_session(record)
        db.session.commit()
    target = service.safe_next(request.form.get("next"), url_for("auth.login"))
    return end_browser_session(redirect(target, 303))


@bp.post("/logout/everywhere")
@reauth.limit("end-sessions")
def logout_everywhere():
    """Sign out on every device, this one included (after the password, unless fresh)."""
    if current_user.is_authenticated:
        ask = reauth.password_first(_("Sign out everywhere"), target="devices")
        if ask is not None:
            return ask
        service.end_sessions(current_user._get_current_object())
        db.session.commit()
    message = _("You are signed out on every device.")
    response = end_browser_session(redirect(url_for("auth.login"), 303))
    flash(message, "success")
    return response


@bp.get("/verify/<token>")
def verify(token):
    try:
        user = service.verify_email(token, now=utcnow())
    except service.TokenInvalidError:
        return render_template("auth/link_invalid.html"), 410
    db.session.commit()
    flash(_("Your email address is confirmed. You can log in now."), "success")
    if current_user.is_authenticated and current_user.id == user.id:
        return redirect(url_for("account.show"), 303)
    return redirect(url_for("auth.login", email=user.email), 303)


@bp.post("/verify/resend")
@limiter.limit(lambda: current_app.config["RATELIMIT_PASSWORD_RESET"])
def resend_verification():
    email = plain(request.form.get("email"))
    user = service.find_user_by_email(email)
    if user is not None and not user.is_verified:
        send_verification(user, now=utcnow())
        db.session.commit()
    return render_template("auth/check_inbox.html", email=email)


@bp.route("/password/forgot", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_PASSWORD_RESET"], methods=["POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if not form.validate_on_submit():
        return render_template("auth/forgot.html", form=form), 422 if form.is_submitted() else 200
    user = service.find_user_by_email(form.email.data)
    if user is not None:
        now = utcnow()
        email_user(
            user,
            "reset_password",
            key=f"reset:{user.id}:{now.timestamp()}",
            link=public_url("auth.reset_password", token=service.make_reset_token(user)),
        )
        db.session.commit()
    return render_template("auth/forgot_sent.html", email=service.normalize_email(form.email.data))


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token):
    try:
        user = service.user_for_reset(token)
    except service.TokenInvalidError:
        return render_template("auth/link_invalid.html"), 410
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            service.reset_password(token, form.password.data, now=utcnow())
        except service.PasswordPolicyError as error:
            form.password.errors.append(str(error))
        else:
            db.session.commit()
            flash(_("Your password is changed. Log in with the new one."), "success")
            return redirect(url_for("auth.login", email=user.email), 303)
    status = 422 if form.is_submitted() else 200
    return render_template("auth/reset.html", form=form, user=user), status


@bp.post("/language")
def set_language():
    locale = request.form.get("locale")
    if locale in current_app.config["LANGUAGES"]:
        session["locale"] = locale
        if current_user.is_authenticated:
            current_user.locale = locale
            db.session.commit()
    return redirect(service.safe_next(request.form.get("next"), url_for("core.index")), 303)


@login_manager.unauthorized_handler
def unauthorized():
    target = url_for("auth.login", next=service.return_path())
    if is_htmx():
        return hx_redirect(target, 401)
    flash(_("Log in to continue."), "info")
    return redirect(target)
