"""Logs an operator can use: one format for the process, a request id, an access line per request,
and optional error reports to Sentry. See docs/operations.md."""

import json
import logging
import re
import secrets
import sys
import time
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request
from flask.logging import default_handler
from flask_login import current_user
from sqlalchemy import inspect

log = logging.getLogger(__name__)
access_log = logging.getLogger("portal.access")

# An incoming X-Request-ID (from the proxy) is kept only when it cannot forge or break a log line.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# The path segment after these is a secret (invitation, password reset, email verification).
TOKEN_PATH = re.compile(r"(/invitations/|/password/reset/|/verify/)[^/]+")
MASK = "…"
UNSAFE_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
ACCESS_FIELDS = ("method", "path", "status", "duration_ms", "user_id")


def init_app(app: Flask) -> None:
    setup_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    # Flask's own handler on app.logger would print the app's records a second time.
    app.logger.removeHandler(default_handler)
    app.before_request(_start_request)
    app.after_request(_end_request)
    _init_error_reporting(app)


def current_request_id() -> str | None:
    """The id of the request being handled, or None outside a request."""
    return g.get("request_id") if has_request_context() else None


def mask_path(path: str) -> str:
    """The path as logs may show it: tokens replaced by …, control characters by ?."""
    return UNSAFE_CHARACTERS.sub("?", TOKEN_PATH.sub(r"\1" + MASK, path))[:300]


# -- logging, once per process --
class RequestIdFilter(logging.Filter):
    """Give every record the request id of the request it was made in ("-" outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        return True


def _iso_time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def formatTime(self, record, datefmt=None):  # noqa: N802 - logging's name
        return _iso_time(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for a log collector."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": _iso_time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        line.update({f: getattr(record, f) for f in ACCESS_FIELDS if hasattr(record, f)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def make_handler(log_format: str, stream=None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    return handler


_process_handler: logging.Handler | None = None


def setup_logging(level: str | int, log_format: str) -> None:
    """Send every record of the process to stderr in one format; later apps change nothing."""
    global _process_handler
    if _process_handler is not None:
        return
    _process_handler = make_handler(log_format)
    root = logging.getLogger()
    root.addHandler(_process_handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    logging.getLogger("stripe").setLevel(logging.WARNING)  # it logs every API call at INFO


# -- the request id and the access line --
def _start_request() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    g.request_id = incoming if SAFE_REQUEST_ID.fullmatch(incoming) else secrets.token_hex(8)
    g.request_started = time.perf_counter()


def _end_request(response):
    response.headers["X-Request-ID"] = g.request_id
    if request.path.startswith("/static/"):
        return response
    user_id = _signed_in_id()
    fields = {
        "method": request.method,
        "path": mask_path(request.path),
        "status": response.status_code,
        "duration_ms": round((time.perf_counter() - g.request_started) * 1000, 1),
        "user_id": user_id,
    }
    access_log.info(
        "%s %s %s %sms user=%s",
        *(fields[f] for f in ACCESS_FIELDS[:4]),
        user_id or "-",
        extra=fields,
    )
    return response


def _signed_in_id() -> int | None:
    """The signed-in user's id without a query: the request's COMMIT (an earlier after-request
    hook) has expired the user, and reading `.id` would load the row again."""
    if not current_user.is_authenticated:
        return None
    identity = inspect(current_user._get_current_object()).identity
    return identity[0] if identity else None


# -- error reports --
def _init_error_reporting(app: Flask) -> None:
    dsn = app.config["SENTRY_DSN"]
    if not dsn:
        return
    try:
        import sentry_sdk
        from sentry_sdk.integrations.flask import FlaskIntegration
    except ImportError:
        log.warning(
            "SENTRY_DSN is set but sentry-sdk is not installed: errors are not reported"
            " (install the portal with its `sentry` extra)"
        )
        return
    sentry_sdk.init(
        dsn=dsn,
        integrations=[FlaskIntegration()],
        send_default_pii=False,
        before_send=scrub_event,
    )


def scrub_event(event: dict, _hint: dict) -> dict:
    """Keep tokens out of error reports: mask the URL's path, drop its query string."""
    data = event.get("request") or {}
    if data.get("url"):
        data["url"] = mask_path(data["url"])
    data.pop("query_string", None)
    return event
