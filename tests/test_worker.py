"""The worker process: SIGTERM, a server that never answers, LISTEN/NOTIFY, scheduled jobs."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest

from portal.billing.models import StripeEvent
from portal.clock import utcnow
from portal.extensions import db
from portal.outbox import service
from portal.outbox.models import OutboxMessage
from portal.worker import claim_run, run_due_jobs
from tests.conftest import SMTPSink


class Blackhole:
    """Accepts TCP connections and never says a word: an SMTP server that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        for conn in self.held:
            conn.close()
        self.sock.close()


def start_worker(database_url, local_stripe, mail_port, *args):
    env = {
        **os.environ,
        "FLASK_PORTAL_DEV": "1",
        "DATABASE_URL": database_url,
        "FLASK_SECRET_KEY": "test-secret-key",
        "FLASK_STRIPE_API_KEY": "sk_test_portal",
        "FLASK_STRIPE_API_BASE": local_stripe,
        "FLASK_MAIL_SERVER": "127.0.0.1",
        "FLASK_MAIL_PORT": str(mail_port),
        "FLASK_MAIL_TIMEOUT": "2",
        "FLASK_PUBLIC_URL": "http://localhost",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "portal", "worker", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def queue_emails(app, count):
    with app.test_request_context():
        for n in range(count):
            service.queue_email(
                to=f"r{n}@clinic.example",
                template="reset_password",
                locale="en",
                key=f"k{n}",
                user={"name": "Nina"},
                link="http://localhost/password/reset/x",
            )
        db.session.commit()


def statuses(app):
    with app.app_context():
        return sorted((m.idempotency_key, m.status) for m in db.session.query(OutboxMessage).all())


def test_sigterm_finishes_the_row_in_hand_releases_the_rest_and_nothing_is_sent_twice(
    app, database_url, local_stripe
):
    queue_emails(app, 3)
    hole = Blackhole()
    worker = start_worker(database_url, local_stripe, hole.port, "--interval", "0.2")
    try:
        deadline = time.monotonic() + 15
        while not hole.held and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hole.held, "the worker never connected"
        stopped_at = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=15)
        took = time.monotonic() - stopped_at
    finally:
        hole.close()
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, output
    assert took < 5, (took, output)  # the SMTP timeout (2 s) bounds the row in hand
    assert all(status == "pending" for _key, status in statuses(app)), statuses(app)
    sink = SMTPSink().start()
    try:
        again = start_worker(database_url, local_stripe, sink.port, "--once")
        again.communicate(timeout=30)
        # The row in hand was retried with back-off; what it released goes out at once.
        with app.test_request_context():
            app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=sink.port)
            from portal.extensions import mail

            mail.init_app(app)
            service.process_due(now=utcnow() + timedelta(hours=2))
        received = sorted(m["To"] for m in sink.messages)
    finally:
        sink.stop()
    assert received == ["r0@clinic.example", "r1@clinic.example", "r2@clinic.example"]
    assert all(status == "done" for _key, status in statuses(app))


@pytest.mark.postgres
def test_a_listening_worker_sends_a_new_email_at_once(app, database_url, local_stripe):
    sink = SMTPSink().start()
    worker = start_worker(database_url, local_stripe, sink.port, "--interval", "30")
    try:
        time.sleep(2)  # started and listening; its next poll is 30 s away
        queued = time.monotonic()
        queue_emails(app, 1)
        while not sink.messages and time.monotonic() - queued < 10:
            time.sleep(0.05)
        latency = time.monotonic() - queued
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=15)
        sink.stop()
    assert len(sink.messages) == 1 and latency < 2, latency


def test_a_scheduled_job_runs_once_per_period_whichever_worker_asks(app):
    now = utcnow()
    with app.app_context():
        assert claim_run("reconcile", timedelta(hours=24), now=now) is True
        assert claim_run("reconcile", timedelta(hours=24), now=now) is False
        assert claim_run("reconcile", timedelta(hours=24), now=now + timedelta(hours=1)) is False
        assert claim_run("reconcile", timedelta(hours=24), now=now + timedelta(hours=25)) is True


def test_clean_up_deletes_old_handled_rows_and_event_ids_only(app, stripe_api):
    now = utcnow()
    with app.test_request_context():
        old = service.enqueue("noop", {}, key="old")
        old.status, old.done_at = "done", now - timedelta(days=40)
        recent = service.enqueue("noop", {}, key="recent")
        recent.status, recent.done_at = "done", now - timedelta(days=1)
        service.enqueue("noop", {}, key="waiting")
        db.session.add(
            StripeEvent(event_id="evt_old", type="x", processed_at=now - timedelta(days=40))
        )
        db.session.add(StripeEvent(event_id="evt_new", type="x", processed_at=now))
        db.session.commit()
        assert sorted(run_due_jobs(now=now)) == ["cleanup", "invitation_reminders", "reconcile"]
        keys = sorted(m.idempotency_key for m in db.session.query(OutboxMessage))
        assert keys == ["recent", "waiting"]
        assert [e.event_id for e in db.session.query(StripeEvent)] == ["evt_new"]
        assert run_due_jobs(now=now + timedelta(minutes=5)) == []  # not due again yet


def test_operators_list_and_retry_failed_rows(app):
    with app.test_request_context():
        row = service.enqueue("email", {"to": "gone@clinic.example", "subject": "s"}, key="f1")
        row.status, row.attempts, row.last_error = (
            "failed",
            8,
            "SMTPRecipientsRefused: no such user",
        )
        db.session.commit()
        row_id = row.id
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["outbox", "failed"])
    assert "gone@clinic.example" in listed.output and "no such user" in listed.output
    assert "1 failed row(s)" in listed.output
    assert runner.invoke(args=["outbox", "retry"]).exit_code == 2  # ids or --all
    retried = runner.invoke(args=["outbox", "retry", "--all"])
    assert "1 row(s) queued again" in retried.output
    with app.app_context():
        again = db.session.get(OutboxMessage, row_id)
        assert (again.status, again.attempts) == ("pending", 0)
