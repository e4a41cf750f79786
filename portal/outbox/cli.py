import logging
import time

import click
from flask import current_app
from flask.cli import with_appcontext

from portal.outbox.service import process_due

log = logging.getLogger(__name__)


@click.command("worker")
@click.option("--once", is_flag=True, help="Process what is due now, then exit.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between polls.")
@with_appcontext
def worker_command(once: bool, interval: float) -> None:
    """Carry out outbox rows (emails, Stripe calls) with retries and back-off."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(message)s")
    base_url = current_app.config.get("PUBLIC_URL") or "http://127.0.0.1:5000"
    while True:
        with current_app.test_request_context(base_url=base_url):
            done = process_due()
            if done:
                log.info("carried out %d outbox rows", done)
        if once:
            return
        time.sleep(interval)
