"""Two-step sign-in with an authenticator app (TOTP, RFC 6238), recovery codes, and the
team rule that requires it (docs/security.md).

The secret is stored encrypted (MultiFernet, keys from TOTP_ENCRYPTION_KEYS); a code is
accepted for one 30-second step either side of now, and only for a step later than the last
one accepted, so no code works twice. Recovery codes are single use and stored hashed.
"""

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

import pyotp
import segno
from cryptography.fernet import Fernet, MultiFernet
from flask import current_app
from sqlalchemy import delete, func, or_, select, update

from portal import permissions
from portal.audit import service as audit
from portal.auth import service as auth_service
from portal.auth.models import User
from portal.exceptions import ConflictError, NotAllowedError
from portal.extensions import db
from portal.i18n import gettext as _
from portal.links import public_url
from portal.outbox.service import email_user
from portal.teams.models import Membership, Team
from portal.twofa.models import RecoveryCode, TwoFactor

ISSUER = "Clinic Teams"
STEP = 30  # seconds per code (RFC 6238's default, what every authenticator app uses)
DRIFT = 1  # steps accepted either side of now: a phone's clock may be a little off
DIGITS = 6
RECOVERY_CODE_COUNT = 10
# 10 characters from 31 (no 0/o, 1/l/i): about 49 bits each, shown as xxxxx-xxxxx.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_LENGTH = 10
# Random 49-bit codes need no slow hash against guessing; the salt and the iterations make a
# stolen table useless for precomputation. Ten codes are checked in well under 0.1 s.
PBKDF2_ITERATIONS = 20_000


class TwoFactorError(ValueError):
    """A refused two-step sign-in change; the message says why, for the form."""


class WrongCodeError(TwoFactorError):
    pass


class WrongPasswordError(TwoFactorError):
    pass


# -- the secret at rest --
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in current_app.config["TOTP_ENCRYPTION_KEYS"]])


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode()).decode()


def rotate_all() -> int:
    """Re-encrypt every secret with the first key (after a new key was put first); returns how
    many. Raises InvalidToken, changing nothing, when a secret opens with none of the keys."""
    fernet = _fernet()
    records = db.session.scalars(select(TwoFactor)).all()
    for record in records:
        record.secret_encrypted = fernet.rotate(record.secret_encrypted.encode()).decode()
    return len(records)


# -- reading --
def record_of(user: User) -> TwoFactor | None:
    return db.session.get(TwoFactor, user.id)


def is_enabled(user: User) -> bool:
    """Whether the user signs in with a second step (set up and confirmed)."""
    record = record_of(user)
    return record is not None and record.enabled_at is not None


def recovery_codes_left(user: User) -> int:
    return db.session.scalar(
        select(func.count(RecoveryCode.id)).where(
            RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
        )
    )


# -- set-up --
def fingerprint(secret: str) -> str:
    """What a browser session keeps of the set-up secret it was shown (see begin_setup)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


def begin_setup(user: User, *, now: datetime, shown: str | None = None) -> str:
    """The secret to scan: the one waiting for its first code if this browser session was
    shown it (`shown`: its fingerprint), else a new one. A secret shown to another session
    (someone else who had the password) is replaced, so it never becomes the account's."""
    record = record_of(user)
    if record is not None and record.enabled_at is not None:
        raise ConflictError(_("Two-step sign-in is already on."))
    if record is not None:
        secret = decrypt(record.secret_encrypted)
        if shown and hmac.compare_digest(shown, fingerprint(secret)):
            return secret
        secret = pyotp.random_base32()
        record.secret_encrypted, record.created_at = encrypt(secret), now
        return secret
    secret = pyotp.random_base32()
    db.session.add(TwoFactor(user_id=user.id, secret_encrypted=encrypt(secret), created_at=now))
    db.session.flush()
    return secret


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The otpauth:// link as an inline SVG QR code, made here (no outside service)."""
    return segno.make(uri, error="m").svg_inline(
        scale=4, dark="#000", light="#fff", title=_("QR code for your authenticator app")
    )


def grouped(secret: str) -> str:
    """The secret in groups of four, for typing it in."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def confirm_setup(user: User, code: str, *, now: datetime) -> list[str]:
    """Turn two-step sign-in on with a first code from the app; returns the recovery codes
    (the only time they exist in plain text)."""
    record = record_of(user)
    if record is None or record.enabled_at is not None:
        raise ConflictError(_("Start the set-up again."))
    if not _use_totp(record, code, now):
        raise WrongCodeError(_("That code is not right. Enter the 6 digits the app shows now."))
    record.enabled_at = now
    codes = _new_recovery_codes(user, now)
    _email(user, "two_factor_on", now)
    return codes


# -- codes --
def time_step(now: datetime) -> int:
    return int(now.replace(tzinfo=UTC).timestamp()) // STEP


def _digits(code: str) -> str:
    return "".join((code or "").split())


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    code = _digits(code)
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp, step = pyotp.TOTP(secret), time_step(now)
    for candidate in range(step - DRIFT, step + DRIFT + 1):
        if hmac.compare_digest(totp.at(candidate * STEP), code):
            return candidate
    return None


def _use_totp(record: TwoFactor, code: str, now: datetime) -> bool:
    """Accept a code once: its step must be later than the last accepted one. The conditional
    UPDATE decides, so two requests racing with the same code cannot both win."""
    step = _matching_step(decrypt(record.secret_encrypted), code, now)
    if step is None:
        return False
    result = db.session.execute(
        update(TwoFactor)
        .where(
            TwoFactor.user_id == record.user_id,
            or_(TwoFactor.last_used_step.is_(None), TwoFactor.last_used_step < step),
        )
        .values(last_used_step=step)
    )
    return result.rowcount == 1


def normalize_recovery_code(code: str) -> str:
    return "".join(ch for ch in (code or "").lower() if ch.isalnum())


def _hash_code(code: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", code.encode(), salt, PBKDF2_ITERATIONS)
    return f"pbkdf2_sha256${PBKDF2_ITERATIONS}${salt.hex()}${digest.hex()}"


def _code_matches(code: str, stored: str) -> bool:
    try:
        _, iterations, salt, digest = stored.split("$")
        mine = hashlib.pbkdf2_hmac("sha256", code.encode(), bytes.fromhex(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(mine.hex(), digest)


def _new_recovery_codes(user: User, now: datetime) -> list[str]:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _n in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _i in range(RECOVERY_LENGTH))
        db.session.add(RecoveryCode(user_id=user.id, code_hash=_hash_code(raw), created_at=now))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    db.session.flush()
    return codes


def _use_recovery_code(user: User, code: str, now: datetime) -> bool:
    code = normalize_recovery_code(code)
    if len(code) != RECOVERY_LENGTH:
        return False
    unused = db.session.scalars(
        select(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    ).all()
    for row in unused:
        if _code_matches(code, row.code_hash):
            # Conditional: of two requests with the same code, one wins.
            result = db.session.execute(
                update(RecoveryCode)
                .where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
                .values(used_at=now)
            )
            return result.rowcount == 1
    return False


def check(user: User, code: str, *, now: datetime) -> str | None:
    """Accept and use up a code from the app ("totp") or a recovery code ("recovery"); None
    for a wrong, reused or replayed code, or when two-step sign-in is off."""
    record = record_of(user)
    if record is None or record.enabled_at is None:
        return None
    if len(_digits(code)) == DIGITS:
        return "totp" if _use_totp(record, code, now) else None
    return "recovery" if _use_recovery_code(user, code, now) else None


def verify(user: User, code: str, *, now: datetime) -> bool:
    """A code from the app or a recovery code, accepted once (account deletion asks this)."""
    return check(user, code, now=now) is not None


def regenerate_recovery_codes(user: User, code: str, *, now: datetime) -> list[str]:
    """New recovery codes (the old ones stop working), for a current code."""
    if not verify(user, code, now=now):
        raise WrongCodeError(_("That code is not right."))
    return _new_recovery_codes(user, now)


def disable(user: User, password: str, code: str, *, now: datetime) -> None:
    """Turn two-step sign-in off: takes the password and a code (or a recovery code)."""
    if not is_enabled(user):
        raise ConflictError(_("Two-step sign-in is already off."))
    if auth_service.authenticate(user.email, password) is None:
        raise WrongPasswordError(_("This is not your current password."))
    if not verify(user, code, now=now):
        raise WrongCodeError(_("That code is not right."))
    remove(user)
    _email(user, "two_factor_off", now)


def remove(user: User) -> None:
    """Forget the secret and the recovery codes (turning it off, deleting the account)."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.execute(delete(TwoFactor).where(TwoFactor.user_id == user.id))


def _email(user: User, template: str, now: datetime) -> None:
    email_user(
        user,
        template,
        key=f"{template}:{user.id}:{now.timestamp()}",
        link=public_url("twofa.show"),
        reset_link=public_url("auth.forgot_password"),
    )


# -- the team rule --
def blocks(user: User, me: Membership | None) -> bool:
    """Whether the team requires two-step sign-in and this member has not set it up."""
    return me is not None and me.team.require_two_factor and not is_enabled(user)


def members_without(team: Team) -> list[User]:
    """The team's members who have not set up two-step sign-in, by name."""
    return db.session.scalars(
        select(User)
        .join(Membership, Membership.user_id == User.id)
        .outerjoin(TwoFactor, TwoFactor.user_id == User.id)
        .where(Membership.team_id == team.id, TwoFactor.enabled_at.is_(None))
        .order_by(func.lower(User.name), User.id)
    ).all()


def set_requirement(me: Membership, required: bool, *, now: datetime) -> list[User]:
    """Require two-step sign-in for the team, or stop requiring it; returns whom it emailed.

    The admin who turns it on must use it already (or they would lock themselves out of the
    page they are on); everyone else without it gets an email with the set-up link."""
    team = me.team
    if not permissions.can_require_two_factor(me, team):
        raise NotAllowedError("cannot change the two-step sign-in rule")
    if team.require_two_factor == required:
        return []
    if required and not is_enabled(me.user):
        raise ConflictError(_("Turn on two-step sign-in for your own account first."))
    team.require_two_factor = required
    audit.record(
        team.id, "team.two_factor_on" if required else "team.two_factor_off", actor=me.user, now=now
    )
    if not required:
        return []
    emailed = members_without(team)
    for user in emailed:
        email_user(
            user,
            "two_factor_required",
            key=f"two_factor_required:{team.id}:{user.id}:{now.timestamp()}",
            team_name=team.name,
            admin_name=me.user.name,
            link=public_url("twofa.setup"),
        )
    return emailed
