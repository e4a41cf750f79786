import logging
import time

import click
from flask import current_app
from flask.cli import with_appcontext

from portal.billing.seats import reconcile
from portal.clock import utcnow
from portal.extensions import db
from portal.outbox.service import process_due

RECONCILE_EVERY = 24 * 3600

log = logging.getLogger(__name__)


@click.command("worker")
@click.option("--once", is_flag=True, help="Process what is due now, then exit.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between polls.")
@with_appcontext
def worker_command(once: bool, interval: float) -> None:
    """Carry out outbox rows (emails, Stripe calls) with retries and back-off."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(message)s")
    logging.getLogger("stripe").setLevel(logging.WARNING)
    base_url = current_app.config.get("PUBLIC_URL") or "http://127.0.0.1:5000"
    last_reconcile = 0.0
    while True:
        with current_app.test_request_context(base_url=base_url):
            done = process_due()
            if done:
                log.info("carried out %d outbox rows", done)
            if time.monotonic() - last_reconcile > RECONCILE_EVERY:
                last_reconcile = time.monotonic()
                try:
                    reconcile(now=utcnow())
                except Exception:  # noqa: BLE001 - Stripe down: try again at the next round
                    db.session.rollback()
                    log.exception("daily reconcile failed")
        if once:
            return
        time.sleep(interval)
