"""Accounts: sign-up, passwords, email verification and reset tokens, sessions."""

import re
import secrets
from datetime import datetime
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from zxcvbn import zxcvbn

from portal.auth.models import User
from portal.devices import service as devices
from portal.extensions import db
from portal.forms import CONTROL
from portal.i18n import gettext as _

VERIFY_MAX_AGE = 7 * 24 * 3600
RESET_MAX_AGE = 3600
PASSWORD_MIN = 8
PASSWORD_MAX = 256


class PasswordPolicyError(ValueError):
    """A password that is too short, too long or too common."""


class EmailTakenError(ValueError):
    """Another account has this address (perhaps created a moment ago by a parallel request)."""


class TokenInvalidError(ValueError):
    """A verification or reset link that is expired, used or forged."""


def safe_next(target: str | None, default: str) -> str:
    """Accept only a local path as the place to go after logging in."""
    # Browsers read a backslash as a slash, and CR or LF would end the Location header.
    if not target or CONTROL.search(target) or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    return target


def hasher() -> PasswordHasher:
    """argon2id with the app's parameters (RFC 9106 low-memory: m=65536, t=3, p=4)."""
    app = current_app._get_current_object()
    if "password_hasher" not in app.extensions:
        instance = PasswordHasher(**app.config["ARGON2_PARAMS"])
        app.extensions["password_hasher"] = (instance, instance.hash(secrets.token_hex(8)))
    return app.extensions["password_hasher"][0]


def _dummy_hash() -> str:
    hasher()
    return current_app.extensions["password_hasher"][1]


def return_path() -> str:
    """Where to come back after logging in: this page, or for a form post the page it came from
    (the post itself would answer 405 to a GET)."""
    from flask import request

    if request.method == "GET":
        return request.full_path.rstrip("?")
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and referrer.path:
        return referrer.path + (f"?{referrer.query}" if referrer.query else "")
    return "/"


def normalize_email(email: str) -> str:
    return email.strip().lower()


# zxcvbn's score: 3 is "safely unguessable" (about 10^10 guesses). It knows the common
# passwords, names and words, and their keyboard, date and l33t variants (Summer2024!,
# Passw0rd!), so the policy needs no list of its own and no composition rules.
PASSWORD_MIN_SCORE = 3
ZXCVBN_MAX = 72  # zxcvbn refuses longer input; the first 72 characters decide


def check_password_policy(password: str, *, email: str = "", name: str = "") -> None:
    """Raise PasswordPolicyError with the reason a password cannot be used."""
    if len(password) < PASSWORD_MIN:
        raise PasswordPolicyError(_("Use at least %(n)d characters.", n=PASSWORD_MIN))
    if len(password) > PASSWORD_MAX:
        raise PasswordPolicyError(_("Use at most %(n)d characters.", n=PASSWORD_MAX))
    address = normalize_email(email)
    own_words = [address, *re.split(r"[@.+_-]", address), *name.lower().split()]
    score = zxcvbn(password[:ZXCVBN_MAX], user_inputs=[w for w in own_words if w])["score"]
    if score < PASSWORD_MIN_SCORE or password.lower() == address:
        raise PasswordPolicyError(_("This password is too easy to guess. Choose another."))


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalize_email(email)))


def create_user(
    *, name: str, email: str, password: str, locale: str | None, now: datetime, verified=False
) -> User:
    """Create an account; EmailTakenError if the address has one (checked by the database)."""
    check_password_policy(password, email=email, name=name)
    user = User(
        name=name.strip(),
        email=normalize_email(email),
        password_hash=hasher().hash(password),
        locale=locale,
        email_verified_at=now if verified else None,
        referral_code=secrets.token_urlsafe(9),
        created_at=now,
    )
    try:
        with db.session.begin_nested():
            db.session.add(user)
    except IntegrityError:
        raise EmailTakenError() from None
    return user


def sign_up(*, name: str, email: str, password: str, locale: str | None, now: datetime):
    """Create an account, or find the one that has this address: (user, created).

    Both cost one password hash, so the time a sign-up takes does not tell whether the address
    has an account (the caller answers both the same way).
    """
    existing = find_user_by_email(email)
    if existing is None:
        try:
            user = create_user(name=name, email=email, password=password, locale=locale, now=now)
        except EmailTakenError:
            return find_user_by_email(email), False
        return user, True
    hasher().hash(password)
    return existing, False


def authenticate(email: str, password: str) -> User | None:
    """Return the user for a correct email and password, else None, in the same time."""
    user = find_user_by_email(email)
    try:
        hasher().verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if hasher().check_needs_rehash(user.password_hash):
        user.password_hash = hasher().hash(password)
    return user


def set_password(user: User, password: str, *, keep: int | None = None) -> None:
    """Change the password (it must meet the policy) and end every session of this user, or
    every one but `keep` (the id of the session record that changed it)."""
    check_password_policy(password, email=user.email, name=user.name)
    user.password_hash = hasher().hash(password)
    if keep is None:
        end_sessions(user)
    else:
        end_other_sessions(user, keep=keep)


def end_sessions(user: User) -> int:
    """End every session of this user, on every device ("sign out everywhere"); the number of
    session records ended. The session version in the login id changes too: a second lock,
    every cookie issued before stops matching."""
    user.session_version += 1
    return devices.end_all(user.id)


def end_other_sessions(user: User, *, keep: int) -> int:
    """End every session of this user but the record `keep`; the number ended."""
    return devices.end_others(user.id, keep=keep)


def end_session(record) -> None:
    """End one session (log out on this device, or sign out one device from the list)."""
    devices.end(record)


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"portal-{purpose}")


def make_verify_token(user: User) -> str:
    return _serializer("verify").dumps({"id": user.id, "email": user.email})


def make_reset_token(user: User) -> str:
    # The hash's tail makes the link single use: it no longer matches once the password changes.
    return _serializer("reset").dumps({"id": user.id, "h": user.password_hash[-16:]})


def verify_email(token: str, *, now: datetime) -> User:
    data = _load(token, "verify", VERIFY_MAX_AGE)
    user = db.session.get(User, data.get("id"))
    if user is None or user.email != data.get("email"):
        raise TokenInvalidError()
    if user.email_verified_at is None:
        user.email_verified_at = now
    return user


def user_for_reset(token: str) -> User:
    data = _load(token, "reset", RESET_MAX_AGE)
    user = db.session.get(User, data.get("id"))
    if user is None or user.password_hash[-16:] != data.get("h"):
        raise TokenInvalidError()
    return user


def reset_password(token: str, password: str, *, now: datetime) -> User:
    """Set a new password from a reset link; the link proves the email address too."""
    user = user_for_reset(token)
    set_password(user, password)
    if user.email_verified_at is None:
        user.email_verified_at = now
    return user


def _load(token: str, purpose: str, max_age: int) -> dict:
    try:
        data = _serializer(purpose).loads(token, max_age=max_age)
    except (SignatureExpired, BadSignature):
        raise TokenInvalidError() from None
    if not isinstance(data, dict):
        raise TokenInvalidError()
    return data
