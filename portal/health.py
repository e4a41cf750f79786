"""Health for operators: what /healthz reports, and `flask --app portal worker-check`."""

from datetime import datetime

import click
import redis
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from portal.clock import utcnow
from portal.extensions import db
from portal.outbox.models import OutboxMessage

REDIS_TIMEOUT = 1  # seconds: a check that hangs is worse than one that says "down"


def outbox_lag(now: datetime) -> int:
    """Seconds the oldest due pending outbox row has waited (0 when none waits)."""
    oldest = db.session.scalar(
        select(func.min(OutboxMessage.next_attempt_at)).where(
            OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now
        )
    )
    return 0 if oldest is None else int((now - oldest).total_seconds())


def database_ok() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any database failure means "not healthy"
        db.session.rollback()
        return False
    return True


def redis_state(uri: str) -> str:
    """ "ok" or "down" when rate limits are counted in Redis, else "not used"."""
    if not uri.startswith(("redis://", "rediss://")):
        return "not used"
    client = redis.Redis.from_url(
        uri, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
    )
    try:
        client.ping()
    except redis.RedisError:
        return "down"
    finally:
        client.close()
    return "ok"


def report(now: datetime) -> tuple[dict, bool]:
    """The /healthz document, and whether everything is healthy."""
    config = current_app.config
    database = database_ok()
    lag = None
    if database:
        try:
            lag = outbox_lag(now)
        except SQLAlchemyError:  # the database answers but has no outbox table: not migrated
            db.session.rollback()
    redis_now = redis_state(config["RATELIMIT_STORAGE_URI"])
    healthy = (
        database
        and redis_now != "down"
        and lag is not None
        and lag <= config["HEALTH_OUTBOX_MAX_AGE"]
    )
    document = {
        "status": "ok" if healthy else "unavailable",
        "database": "ok" if database else "down",
        "redis": redis_now,
        "outbox": {"oldest_due_seconds": lag},
    }
    return document, healthy


@click.command("worker-check")
@with_appcontext
def worker_check_command() -> None:
    """Exit 1 when the oldest due outbox row waited too long (no worker works), else 0."""
    limit = current_app.config["HEALTH_OUTBOX_MAX_AGE"]
    try:
        lag = outbox_lag(utcnow())
    except Exception as error:  # noqa: BLE001 - the probe answers in one line, never a traceback
        click.echo(f"worker-check: the database does not answer: {type(error).__name__}", err=True)
        raise SystemExit(1) from None
    if lag > limit:
        click.echo(
            f"worker-check: the oldest due outbox row has waited {lag} s (limit {limit} s):"
            " no worker is carrying out the outbox",
            err=True,
        )
        raise SystemExit(1)
    click.echo(f"worker-check: ok, the oldest due outbox row has waited {lag} s (limit {limit} s)")
