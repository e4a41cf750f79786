"""`make run`: the database, the local Stripe server, the outbox worker and the web server."""

import os
import signal
import socket
import subprocess
import sys
import time

import click
from flask import current_app
from flask.cli import AppGroup
from flask_migrate import upgrade
from sqlalchemy import func, select

from devtools import ROOT
from devtools.provision import restore_subscriptions
from devtools.seed import DEMO_PASSWORD, DEMO_USERS, seed_demo
from portal.auth.models import User
from portal.billing.service import bootstrap_prices
from portal.extensions import db

dev_cli = AppGroup("dev", help="Development mode helpers.")


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise click.ClickException(f"nothing answered on 127.0.0.1:{port} after {timeout:.0f} s")


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_local_stripe(port: int, webhook_url: str, secret: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.localstripe_ext",
            "--port",
            str(port),
            "--webhook-url",
            webhook_url,
            "--webhook-secret",
            secret,
        ],
        cwd=ROOT,
    )


@dev_cli.command("serve")
@click.option("--port", default=5000, show_default=True)
def serve_command(port: int) -> None:
    """Upgrade the database, seed it when new, start local Stripe, the worker and the web."""
    config = current_app.config
    if not config["PORTAL_DEV"]:
        raise click.ClickException("`dev serve` runs only in development mode (FLASK_PORTAL_DEV=1)")
    for busy in (port, config["LOCAL_STRIPE_PORT"]):
        if port_in_use(busy):
            raise click.ClickException(f"port {busy} is in use: stop what runs there first")
    upgrade()
    new_database = db.session.scalar(select(func.count(User.id))) == 0
    children: list[subprocess.Popen] = []
    stopping = []

    def stop():
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()

    def on_stop_signal(signum, _frame):
        # Ctrl-C reaches every process of the group at once: a child that stops first is no
        # error. Set explicitly, as a shell starting us in the background ignores SIGINT.
        if not stopping:
            stopping.append(signum)
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_stop_signal)
    signal.signal(signal.SIGTERM, on_stop_signal)
    try:
        children.append(
            start_local_stripe(
                config["LOCAL_STRIPE_PORT"],
                f"http://127.0.0.1:{port}/billing/webhook",
                config["STRIPE_WEBHOOK_SECRET"],
            )
        )
        wait_for_port(config["LOCAL_STRIPE_PORT"])
        with current_app.test_request_context(base_url=config["PUBLIC_URL"]):
            bootstrap_prices()
            restored = restore_subscriptions()
            if new_database:
                seed_demo()
        flask = [sys.executable, "-m", "flask", "--app", "portal"]
        env = {**os.environ, "FLASK_PORTAL_DEV": "1"}
        children.append(subprocess.Popen([*flask, "worker"], env=env, cwd=ROOT))
        children.append(
            subprocess.Popen(
                [*flask, "run", "--port", str(port), "--with-threads"], env=env, cwd=ROOT
            )
        )
        wait_for_port(port)
        click.echo(f"\nClinic Teams portal: http://127.0.0.1:{port}/")
        click.echo(f"Emails it sends: http://127.0.0.1:{port}/dev/mailbox")
        click.echo(f"Local Stripe re-created {restored} subscription(s) from the database.")
        click.echo(f"Demo logins (password for all: {DEMO_PASSWORD}):")
        for email, name, _locale, what in DEMO_USERS:
            click.echo(f"  {email:22} {name}: {what}")
        click.echo("Press Ctrl-C to stop.\n")
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        if not stopping:
            raise click.ClickException("a process stopped; see its output above")
    except KeyboardInterrupt:
        pass
    finally:
        stop()
