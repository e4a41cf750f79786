"""The worker process: `flask --app portal worker`.

Two loops in one process. The outbox loop carries out emails and Stripe calls as soon as they
are committed (LISTEN/NOTIFY on PostgreSQL, a short poll on SQLite). The schedule loop, in its
own thread so a slow Stripe never holds up an email, runs the periodic jobs; each job runs once
per period across any number of workers (a conditional UPDATE of its scheduled_jobs row).
SIGTERM or Ctrl-C: the row in hand is finished (every call has a timeout), the rest of the
claimed batch is released at once, and the process exits.
"""

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import click
import psycopg
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from portal.billing import service as billing
from portal.billing.seats import reconcile
from portal.clock import utcnow
from portal.devices import service as devices
from portal.extensions import db
from portal.invitations import service as invitations
from portal.outbox import service as outbox
from portal.outbox.models import ScheduledJob

log = logging.getLogger(__name__)
SCHEDULE_TICK = 60  # seconds between looks at the schedule


def cleanup(*, now: datetime) -> None:
    """Retention: old outbox rows, old Stripe event ids and timed-out session records."""
    config = current_app.config
    rows = outbox.delete_old(before=now - timedelta(days=config["OUTBOX_RETENTION_DAYS"]))
    events = billing.forget_events(
        before=now - timedelta(days=config["STRIPE_EVENT_RETENTION_DAYS"])
    )
    sessions = devices.delete_expired(now=now)
    log.info(
        "clean-up: %d outbox rows, %d Stripe event ids and %d timed-out sessions deleted",
        rows,
        events,
        sessions,
    )


def schedule(config) -> dict[str, tuple[timedelta, Callable]]:
    return {
        "reconcile": (timedelta(seconds=config["RECONCILE_EVERY"]), reconcile),
        "cleanup": (timedelta(seconds=config["CLEANUP_EVERY"]), cleanup),
        "invitation_reminders": (
            timedelta(seconds=config["REMINDER_EVERY"]),
            invitations.send_reminders,
        ),
    }


def claim_run(name: str, every: timedelta, *, now: datetime) -> bool:
    """Whether this worker runs the job now: once per period, whichever worker asks first."""
    won = (
        db.session.execute(
            update(ScheduledJob)
            .where(ScheduledJob.name == name, ScheduledJob.last_started_at <= now - every)
            .values(last_started_at=now)
        ).rowcount
        == 1
    )
    if not won and db.session.get(ScheduledJob, name) is None:
        try:
            with db.session.begin_nested():
                db.session.add(ScheduledJob(name=name, last_started_at=now))
            won = True
        except IntegrityError:  # another worker made the row a moment ago: it runs the job
            won = False
    db.session.commit()
    return won


def run_due_jobs(*, now: datetime) -> list[str]:
    """Run each scheduled job whose period has passed and that no other worker took."""
    ran = []
    for name, (every, job) in schedule(current_app.config).items():
        if not claim_run(name, every, now=now):
            continue
        error = None
        try:
            job(now=now)
            db.session.commit()
        except Exception as exc:  # noqa: BLE001 - logged and kept; the next period tries again
            db.session.rollback()
            error = f"{type(exc).__name__}: {exc}"[:2000]
            log.exception("scheduled job %s failed", name)
        row = db.session.get(ScheduledJob, name)
        row.last_finished_at, row.last_error = utcnow(), error
        db.session.commit()
        ran.append(name)
    return ran


def _schedule_loop(app: Flask, stop: threading.Event) -> None:
    while not stop.is_set():
        with app.app_context():
            try:
                run_due_jobs(now=utcnow())
            except Exception:  # noqa: BLE001 - the database is down: try at the next tick
                db.session.rollback()
                log.exception("schedule loop")
        stop.wait(SCHEDULE_TICK)


def _waiter(app: Flask, interval: float) -> Callable[[threading.Event], None]:
    """How the outbox loop waits for new rows: a NOTIFY on PostgreSQL, else `interval`."""
    url = db.engine.url
    if url.get_backend_name() != "postgresql":
        return lambda stop: stop.wait(interval)
    conn = psycopg.connect(
        url.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True
    )
    conn.execute(f"LISTEN {outbox.CHANNEL}")

    def wait(stop: threading.Event) -> None:
        # Wake at the first notification, or after `interval` to pick up retries that fall
        # due; look at `stop` every second.
        deadline = time.monotonic() + interval
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            if list(conn.notifies(timeout=min(left, 1.0), stop_after=1)):
                return

    return wait


@click.command("worker")
@click.option("--once", is_flag=True, help="Process what is due now, then exit.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between polls.")
@with_appcontext
def worker_command(once: bool, interval: float) -> None:
    """Carry out outbox rows (emails, Stripe calls) and the scheduled jobs."""
    app = current_app._get_current_object()
    logging.getLogger("stripe").setLevel(logging.WARNING)
    # smtplib takes the process's default socket timeout: the worker never waits on a server.
    socket.setdefaulttimeout(app.config["MAIL_TIMEOUT"])
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_args: stop.set())
    if once:
        with app.test_request_context(base_url=app.config["PUBLIC_URL"]):
            outbox.process_due(stopping=stop.is_set)
        return
    scheduler = threading.Thread(target=_schedule_loop, args=(app, stop), daemon=True)
    scheduler.start()
    wait = _waiter(app, interval)
    log.info("worker started")
    while not stop.is_set():
        with app.test_request_context(base_url=app.config["PUBLIC_URL"]):
            try:
                done = outbox.process_due(stopping=stop.is_set)
            except Exception:  # noqa: BLE001 - the database is down: try again shortly
                db.session.rollback()
                log.exception("outbox loop")
                done = 0
        if done:
            log.info("carried out %d outbox rows", done)
        elif not stop.is_set():
            wait(stop)
    scheduler.join(5)
    log.info("worker stopped")
