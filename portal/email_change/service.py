"""Change of email address: the password and the new address ask; a link to the new address
changes it; a link to the old one undoes it for 7 days.

The links are signed like the verification and reset links (itsdangerous, the app's secret
key, a salt of their own). Each names the account, the old and the new address and the time of
the account's last address change (`users.email_changed_at`), so a link made before another
change, or before an undo, no longer works. Nothing is stored for a request that is never
confirmed.
"""

from datetime import datetime

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.exc import IntegrityError

from portal.auth import service as auth
from portal.auth.models import User
from portal.exceptions import DomainError
from portal.extensions import db
from portal.i18n import gettext as _
from portal.links import public_url
from portal.outbox.service import email_user, queue_email

CONFIRM_MAX_AGE = 24 * 3600
UNDO_MAX_AGE = 7 * 24 * 3600


class WrongPasswordError(DomainError):
    """The password given is not the account's."""


class SameAddressError(DomainError):
    """The new address is the one the account already has."""


class AddressTakenError(DomainError):
    """Another account has the address (found when a link is opened, not when it is asked)."""


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"portal-{purpose}")


def _stamp(moment: datetime | None) -> str:
    return moment.isoformat() if moment else ""


def _moment(stamp: str) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return None


def make_confirm_token(user: User, new_email: str) -> str:
    return _serializer("email-change").dumps(
        {"id": user.id, "old": user.email, "new": new_email, "v": _stamp(user.email_changed_at)}
    )


def make_undo_token(user: User, old_email: str) -> str:
    """For the old address, made right after the change (`v` is the change's time)."""
    return _serializer("email-undo").dumps(
        {"id": user.id, "old": old_email, "new": user.email, "v": _stamp(user.email_changed_at)}
    )


def _load(token: str, purpose: str, max_age: int) -> dict:
    try:
        data = _serializer(purpose).loads(token, max_age=max_age)
    except (SignatureExpired, BadSignature):
        raise auth.TokenInvalidError() from None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(key), str) for key in ("old", "new", "v")
    ):
        raise auth.TokenInvalidError()
    return data


def request_change(user: User, *, password: str, new_email: str, now: datetime) -> str:
    """Check the password and send the confirmation link to the new address; return it
    (normalized). If another account has the address, that address is told so instead: the
    answer to the requester is the same, so it does not reveal who has an account."""
    if auth.authenticate(user.email, password) is None:
        raise WrongPasswordError(_("This is not your current password."))
    new = auth.normalize_email(new_email)
    if new == user.email:
        raise SameAddressError(_("This is already your email address."))
    key = f"email-change:{user.id}:{now.timestamp()}"
    existing = auth.find_user_by_email(new)
    if existing is not None:
        email_user(
            existing,
            "email_change_taken",
            key=key,
            now=now,
            login_link=public_url("auth.login"),
            reset_link=public_url("auth.forgot_password"),
        )
        return new
    queue_email(
        to=new,
        template="email_change_confirm",
        locale=user.locale,
        key=key,
        now=now,
        user=user,
        new_email=new,
        link=public_url("email_change.confirm", token=make_confirm_token(user, new)),
    )
    return new


def check_confirm(token: str) -> tuple[User, str]:
    """The account and new address a confirmation link names, if it still works."""
    data = _load(token, "email-change", CONFIRM_MAX_AGE)
    user = db.session.get(User, data.get("id"))
    if (
        user is None
        or user.deleted_at is not None
        or user.email != data["old"]
        or _stamp(user.email_changed_at) != data["v"]
    ):
        raise auth.TokenInvalidError()
    return user, data["new"]


def confirm_change(token: str, *, now: datetime) -> User:
    """Change the address (the link proves the new one is the user's); tell the old one, with
    a link to undo the change for 7 days."""
    user, new = check_confirm(token)
    old = user.email
    _set_email(user, new)
    user.email_changed_at = now
    user.email_verified_at = now
    queue_email(
        to=old,
        template="email_changed",
        locale=user.locale,
        key=f"email-changed:{user.id}:{now.timestamp()}",
        now=now,
        user=user,
        old_email=old,
        new_email=new,
        link=public_url("email_change.undo", token=make_undo_token(user, old)),
    )
    return user


def check_undo(token: str) -> tuple[User, str]:
    """The account and old address an undo link names, if it still works: within 7 days of
    the change, once, and not after a later undo. A later change does not disarm it (someone
    who took the account over cannot change the address twice to stop the owner's undo)."""
    data = _load(token, "email-undo", UNDO_MAX_AGE)
    user = db.session.get(User, data.get("id"))
    if (
        user is None
        or user.deleted_at is not None
        or user.email == data["old"]
        or (changed_at := _moment(data["v"])) is None
        or user.email_changed_at is None
        or user.email_changed_at < changed_at
        or (user.email_undone_at is not None and user.email_undone_at >= changed_at)
    ):
        raise auth.TokenInvalidError()
    return user, data["old"]


def undo_change(token: str, *, now: datetime) -> User:
    """Put the old address back and end every session: the likely reason for an undo is that
    someone else changed it. The caller then has the user choose a new password."""
    user, old = check_undo(token)
    _set_email(user, old)
    user.email_changed_at = user.email_undone_at = now
    auth.end_sessions(user)
    return user


def _set_email(user: User, address: str) -> None:
    """The database's unique index decides (another account may have taken it since)."""
    if auth.find_user_by_email(address) not in (None, user):
        raise AddressTakenError(_("Another account now has this address."))
    try:
        with db.session.begin_nested():
            user.email = address
    except IntegrityError:
        raise AddressTakenError(_("Another account now has this address.")) from None
