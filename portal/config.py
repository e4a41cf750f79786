"""Configuration: defaults here, then instance/config.py, then FLASK_* environment variables."""

import base64
import hashlib
import json
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import click
from cryptography.fernet import Fernet


class ConfigError(click.ClickException):
    """Raised at start-up when production configuration is incomplete. A ClickException, so
    `flask …` commands print it as one line ("Error: …") and exit 1, without a traceback."""


DEFAULTS = {
    "PORTAL_DEV": False,
    # Recycle rather than ping: a ping is one more round trip on every request.
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_recycle": 1800},
    "SESSION_COOKIE_NAME": "__Host-session",
    "SESSION_COOKIE_SECURE": True,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "REMEMBER_COOKIE_SECURE": True,
    "REMEMBER_COOKIE_HTTPONLY": True,
    "REMEMBER_COOKIE_SAMESITE": "Lax",
    "PERMANENT_SESSION_LIFETIME": 12 * 3600,
    "SESSION_IDLE_SECONDS": 2 * 3600,
    "ARGON2_PARAMS": {"time_cost": 3, "memory_cost": 65536, "parallelism": 4},
    "WTF_CSRF_TIME_LIMIT": 3600,
    # Larger request bodies get 413 before anything parses them (room for a CSV of members).
    "MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
    "PREFERRED_URL_SCHEME": "https",
    "PROXY_FIX_HOPS": 0,
    # X-Forwarded-Host is trusted only when the proxy is known to set it (it rewrites the host
    # that every check of TRUSTED_HOSTS sees).
    "PROXY_FIX_HOST": False,
    # The one origin of every link that leaves the portal (emails, Stripe return URLs), e.g.
    # https://portal.clinic.example. Required outside development mode.
    "PUBLIC_URL": None,
    # Host names requests may use; None means the host of PUBLIC_URL (and, in development,
    # 127.0.0.1 and localhost). A request for any other host gets 400.
    "TRUSTED_HOSTS": None,
    "BABEL_DEFAULT_LOCALE": "en",
    "BABEL_DEFAULT_TIMEZONE": "Europe/Copenhagen",
    "LANGUAGES": {"en": "English", "da": "Dansk"},
    # False sends no email at all (say so on purpose: a missing MAIL_SERVER stops start-up).
    "MAIL_ENABLED": True,
    "MAIL_SERVER": None,
    # Seconds for each SMTP connect, read and write in the worker; it never hangs on a server.
    "MAIL_TIMEOUT": 10,
    "MAIL_PORT": 25,
    "MAIL_USE_TLS": False,
    "MAIL_USE_SSL": False,
    "MAIL_DEFAULT_SENDER": "Clinic Teams <no-reply@clinicteams.example>",
    "SALES_EMAIL": "sales@clinicteams.example",
    # Explicit: Flask-Limiter keeps the last app's setting on its shared object otherwise.
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_STORAGE_URI": "memory://",
    # memory:// counts per process: allowed outside development only when set to True.
    "RATELIMIT_ALLOW_MEMORY": False,
    "RATELIMIT_HEADERS_ENABLED": True,
    # When Redis does not answer, each process limits in its own memory (logged) until it does.
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    # A Redis that hangs counts as down after a second (the default waits forever), and an error
    # the fallback does not catch (two threads failing at once) is logged instead of a 500.
    "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    "RATELIMIT_SWALLOW_ERRORS": True,
    # Log-in: every attempt per address and IP; failed attempts per account from any IP
    # (stuffing) and per IP across accounts (spraying). A limited correct password is refused.
    "RATELIMIT_LOGIN": "10/minute",
    "RATELIMIT_LOGIN_ACCOUNT": "10/hour",
    "RATELIMIT_LOGIN_IP": "20/hour",
    "RATELIMIT_SIGNUP": "5/hour",
    # Sign-ups through a pending invitation link: the link proves the address, so they never
    # use the anonymous budget above (a clinic signs up behind one IP).
    "RATELIMIT_INVITATION_SIGNUP": "10/hour",
    "RATELIMIT_INVITATION_SIGNUP_TEAM": "200/hour",
    # Unknown invitation links per IP (guessing; tokens have 256 bits anyway).
    "RATELIMIT_INVITATION_GUESS": "30/minute",
    "RATELIMIT_PASSWORD_RESET": "5/hour",
    "RATELIMIT_PASSWORD_CHANGE": "5/hour",
    "RATELIMIT_INVITE_ADMIN": "50/hour",
    "RATELIMIT_INVITE_TEAM": "200/day",
    "RATELIMIT_RESEND": "5/hour",
    "RATELIMIT_CONTACT": "5/hour",
    # Two-step sign-in: failed codes per account, on the log-in step and the settings forms
    # together (a correct code after the limit is refused too).
    "RATELIMIT_TWO_FACTOR": "5/minute;20/hour",
    # Seconds between the password step and the code step of a log-in.
    "TWO_FACTOR_LOGIN_SECONDS": 300,
    # Fernet keys for the authenticator secrets, comma-separated: the first encrypts, all
    # decrypt (rotation: put the new key first, run `flask two-factor rotate-key`, then drop
    # the old one). Required outside development mode; there a key made from SECRET_KEY.
    "TOTP_ENCRYPTION_KEYS": None,
    "OUTBOX_MAX_ATTEMPTS": 8,
    # The worker's scheduled jobs (seconds) and how long handled rows are kept (days).
    "RECONCILE_EVERY": 24 * 3600,
    "CLEANUP_EVERY": 3600,
    "OUTBOX_RETENTION_DAYS": 30,
    "STRIPE_EVENT_RETENTION_DAYS": 30,
    "STRIPE_API_KEY": None,
    "STRIPE_API_BASE": None,
    "STRIPE_WEBHOOK_SECRET": None,
    "STRIPE_WEBHOOK_TOLERANCE": 300,
    # Every Stripe call: connect and read timeouts (s) and retries of network errors (with the
    # same idempotency key). (3 + 8) x 2 stays well under gunicorn's 30 s; local Stripe: none.
    "STRIPE_CONNECT_TIMEOUT": 3,
    "STRIPE_READ_TIMEOUT": 8,
    "STRIPE_MAX_RETRIES": 1,
    # Price previews on pages: one try this long, then the page shows our own estimate.
    "STRIPE_PREVIEW_TIMEOUT": 1.5,
    "CURRENCY": "dkk",
    # Seat prices in the currency's minor unit (øre), per plan and billing interval.
    "SEAT_PRICES": {
        ("pro", "month"): 29900,
        ("pro", "year"): 299000,
        ("practice", "month"): 44900,
        ("practice", "year"): 449000,
    },
    # Clinic discount: (last seat of the tier or None, percent off), volume pricing.
    "DISCOUNT_TIERS": [(4, 0), (9, 10), (None, 15)],
    "TRIAL_DAYS": 14,
    "INVITATION_DAYS": 30,
    "INVITATION_REMINDER_DAYS": 5,  # the reminder goes out this many days before expiry
    "REMINDER_EVERY": 3600,  # how often the worker looks for invitations to remind
    "LARGE_TEAM_SEATS": 10,
    "LOCAL_STRIPE_PORT": 8420,
    # Operations (docs/operations.md). /healthz and `worker-check` fail when the oldest due outbox
    # row has waited longer than this many seconds: no worker is working.
    "HEALTH_OUTBOX_MAX_AGE": 300,
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "text",  # or "json": one JSON object per line
    # Errors go to Sentry when set and sentry-sdk is installed (the `sentry` extra).
    "SENTRY_DSN": None,
}

DEV_DEFAULTS = {
    "SESSION_COOKIE_NAME": "session",
    "SESSION_COOKIE_SECURE": False,
    "REMEMBER_COOKIE_SECURE": False,
    "PREFERRED_URL_SCHEME": "http",
    "STRIPE_WEBHOOK_SECRET": "whsec_local_development",
    "PUBLIC_URL": "http://127.0.0.1:5000",
}
DEV_HOSTS = ["127.0.0.1", "localhost"]


def load(app, test_config: dict | None) -> None:
    """Fill app.config from defaults, the instance folder, the environment and test_config."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env(loads=env_value)
    if os.environ.get("DATABASE_URL"):
        app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    if test_config:
        app.config.from_mapping(test_config)
    if app.config["PORTAL_DEV"]:
        _apply_dev_defaults(app)
    app.config.setdefault(
        "SQLALCHEMY_DATABASE_URI",
        "sqlite:///" + str(Path(app.instance_path) / "portal.sqlite3"),
    )
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("postgres://") or uri.startswith("postgresql://"):
        app.config["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://" + uri.split("://", 1)[1]
    _check_production(app.config)
    app.config["TOTP_ENCRYPTION_KEYS"] = totp_keys(app.config)
    app.config["PUBLIC_URL"] = app.config["PUBLIC_URL"].rstrip("/")
    app.config["TRUSTED_HOSTS"] = trusted_hosts(app.config)


def env_value(text: str):
    """A FLASK_* value: true/false, yes/no, on/off as booleans (any case), else JSON where it
    parses (numbers, lists), else the text itself. Flask's default reads "False" as a string,
    which is true."""
    word = text.strip().lower()
    if word in ("true", "yes", "on"):
        return True
    if word in ("false", "no", "off"):
        return False
    try:
        return json.loads(text)
    except ValueError:
        return text


def trusted_hosts(config) -> list[str]:
    """The host names requests may use: as configured (a list or "a,b"), else PUBLIC_URL's."""
    hosts = config.get("TRUSTED_HOSTS")
    if isinstance(hosts, str):
        hosts = [host.strip() for host in hosts.split(",") if host.strip()]
    if not hosts:
        hosts = [urlsplit(config["PUBLIC_URL"]).hostname]
        if config["PORTAL_DEV"]:
            hosts += DEV_HOSTS
    return list(hosts)


def totp_keys(config) -> list[str]:
    """The Fernet keys of the authenticator secrets, the encrypting one first. A malformed key
    stops start-up; development mode without keys uses one made from SECRET_KEY."""
    keys = config.get("TOTP_ENCRYPTION_KEYS") or []
    if isinstance(keys, str):
        keys = keys.split(",")
    keys = [key.strip() for key in keys if key and key.strip()]
    if not keys:
        if not config["PORTAL_DEV"]:  # _check_production has said so already; belt and braces
            raise ConfigError(
                "Missing configuration outside development mode: TOTP_ENCRYPTION_KEYS"
            )
        digest = hashlib.sha256(b"portal-totp-dev:" + str(config["SECRET_KEY"]).encode()).digest()
        return [base64.urlsafe_b64encode(digest).decode()]
    for position, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError(
                f"TOTP_ENCRYPTION_KEYS: key {position} is not a Fernet key (32 url-safe base64"
                " bytes; make one with `flask two-factor new-key`)."
            ) from None
    return keys


def _apply_dev_defaults(app) -> None:
    for key, value in DEV_DEFAULTS.items():
        if app.config.get(key) == DEFAULTS.get(key):
            app.config[key] = value
    if not app.config.get("STRIPE_API_KEY"):
        app.config["STRIPE_API_KEY"] = "sk_test_local_development"
        app.config["STRIPE_API_BASE"] = app.config.get("STRIPE_API_BASE") or (
            f"http://127.0.0.1:{app.config['LOCAL_STRIPE_PORT']}"
        )
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _dev_secret(Path(app.instance_path))


def _dev_secret(instance: Path) -> str:
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "dev-secret-key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


def _check_production(config) -> None:
    """Refuse to start outside development mode with a setting that would fail later."""
    if config["PORTAL_DEV"]:
        return
    missing = [
        key
        for key in (
            "SECRET_KEY",
            "STRIPE_API_KEY",
            "STRIPE_WEBHOOK_SECRET",
            "PUBLIC_URL",
            "TOTP_ENCRYPTION_KEYS",
        )
        if not config.get(key)
    ]
    if config["MAIL_ENABLED"] and not config.get("MAIL_SERVER"):
        missing.append("MAIL_SERVER (or FLASK_MAIL_ENABLED=false to send no email)")
    if missing:
        raise ConfigError(
            "Missing configuration outside development mode: "
            + ", ".join(missing)
            + ". Set them as FLASK_<NAME> environment variables or in instance/config.py,"
            " or set FLASK_PORTAL_DEV=1 for local development."
        )
    if config["RATELIMIT_STORAGE_URI"].startswith("memory://") and not config.get(
        "RATELIMIT_ALLOW_MEMORY"
    ):
        raise ConfigError(
            "RATELIMIT_STORAGE_URI is memory://, which counts per process: set"
            " FLASK_RATELIMIT_STORAGE_URI=redis://host:6379/0, or FLASK_RATELIMIT_ALLOW_MEMORY=true"
            " if exactly one web process runs."
        )
