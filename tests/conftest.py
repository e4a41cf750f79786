"""Fixtures: a real database (SQLite file or PostgreSQL), local Stripe, a real SMTP sink."""

import email
import email.policy
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import requests
from aiosmtpd.controller import Controller
from psycopg.errors import DeadlockDetected
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

import devtools
from portal import create_app
from portal.clock import utcnow
from portal.extensions import db, limiter

WEBHOOK_SECRET = "whsec_test_secret"
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


# -- database --
def _database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    return "sqlite:///" + str(tmp_path_factory.mktemp("db") / "test.sqlite3")


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql"))


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url = _database_url(tmp_path_factory)
    if is_postgres(url):
        engine = create_engine("postgresql+psycopg://" + url.split("://", 1)[1])
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
    app = create_app({"PORTAL_DEV": True, "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "t"})
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.engine.dispose()
    return url


def pytest_collection_modifyitems(config, items):
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not is_postgres(url):
        selected = [i for i in items if "postgres" not in i.keywords]
        deselected = [i for i in items if "postgres" in i.keywords]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = selected
            config._portal_notice = (
                f"{len(deselected)} PostgreSQL-only tests deselected: set TEST_DATABASE_URL"
            )
    if not os.path.exists("/usr/bin/chromium"):
        if os.environ.get("CI") == "true":
            raise pytest.UsageError("CI=true but /usr/bin/chromium is missing")
        skip = pytest.mark.skip(reason="Chromium is not installed (/usr/bin/chromium)")
        for item in items:
            if "browser" in item.keywords:
                item.add_marker(skip)
        config._portal_notice = "BROWSER TESTS SKIPPED: /usr/bin/chromium is missing"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    notice = getattr(config, "_portal_notice", None)
    if notice:
        terminalreporter.write_sep("!", notice)


def _clean(app) -> None:
    with app.app_context():
        db.session.remove()
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        if db.engine.dialect.name != "postgresql":
            with db.engine.begin() as conn:
                for table in tables:
                    conn.execute(text(f"DELETE FROM {table}"))
            return
        # A browser test's page can still have a request in flight (a poll, a download) when
        # the test ends; PostgreSQL then finds it and the TRUNCATE deadlocked and cancels the
        # TRUNCATE. The request finishes in a moment, so try again.
        for attempt in range(10):
            try:
                with db.engine.begin() as conn:
                    conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
                return
            except OperationalError as error:
                if attempt == 9 or not isinstance(error.orig, DeadlockDetected):
                    raise
                time.sleep(0.2)


# -- local Stripe --
LOCAL_STRIPE = {}


@pytest.fixture(scope="session")
def local_stripe():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.localstripe_ext", "--port", str(port)],
        cwd=devtools.ROOT,
    )
    LOCAL_STRIPE["process"] = process  # the fault tests pause and resume it
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


class StripeTestAPI:
    """Raw access to the local Stripe server, to count and re-read objects in tests."""

    def __init__(self, base):
        self.base = base
        self.auth = ("sk_test_portal", "")

    def get(self, path, **params):
        response = requests.get(self.base + path, params=params, auth=self.auth, timeout=10)
        response.raise_for_status()
        return response.json()

    def post(self, path, data=None):
        response = requests.post(self.base + path, data=data or {}, auth=self.auth, timeout=10)
        response.raise_for_status()
        return response.json()

    def list(self, resource, **params):
        return self.get(f"/v1/{resource}", limit=100, **params)["data"]

    def events(self, since: int):
        return [e for e in self.list("events") if e["created"] >= since]

    def reset(self):
        requests.delete(self.base + "/_config/data", timeout=10).raise_for_status()

    def register_webhook(self, url, events=None):
        data = {"url": url, "secret": WEBHOOK_SECRET}
        if events is not None:
            data = {**data, "events": events}
        requests.post(self.base + "/_config/webhooks/portal", json=data, timeout=10)

    def complete_checkout(self, url, card="4242424242424242", **extra):
        response = requests.post(
            url, data={"card": card, "exp": "12/34", "cvc": "123", **extra}, allow_redirects=False
        )
        return response


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    timestamp = timestamp or int(time.time())
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def post_event(client, event: dict, **kwargs):
    payload = json.dumps(event).encode()
    return client.post(
        "/billing/webhook",
        data=payload,
        headers={"Stripe-Signature": sign(payload, **kwargs), "Content-Type": "application/json"},
    )


@pytest.fixture
def stripe_api(local_stripe, app):
    api = StripeTestAPI(local_stripe)
    api.reset()
    with app.app_context():
        from portal.billing.service import bootstrap_prices

        bootstrap_prices()
    api.t0 = int(time.time())
    return api


@pytest.fixture
def deliver_events(client, stripe_api):
    """Sign and post to the portal every event local Stripe emitted since the test began."""

    delivered = set()

    def deliver(types=None):
        responses = []
        for event in stripe_api.events(stripe_api.t0 - 1):
            if event["id"] in delivered or (types and event["type"] not in types):
                continue
            delivered.add(event["id"])
            responses.append(post_event(client, event))
        return responses

    return deliver


# -- the app --
def app_config(database_url, local_stripe, **overrides):
    return {
        "PORTAL_DEV": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "STRIPE_API_KEY": "sk_test_portal",
        "STRIPE_API_BASE": local_stripe,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_READ_TIMEOUT": 3,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_STORAGE_URI": os.environ.get("FLASK_RATELIMIT_STORAGE_URI", "memory://"),
        "SERVER_NAME": "localhost",
        "PUBLIC_URL": "http://localhost",
        "MAIL_SERVER": None,
        # Cheap hashes keep the suite fast; test_auth checks the production parameters.
        "ARGON2_PARAMS": {"time_cost": 1, "memory_cost": 1024, "parallelism": 1},
        **overrides,
    }


@pytest.fixture
def app_overrides():
    return {}


@pytest.fixture
def app(database_url, local_stripe, app_overrides):
    app = create_app(app_config(database_url, local_stripe, **app_overrides))
    with app.app_context():
        limiter.reset()  # Redis keeps counters between tests; every test starts from zero.
    yield app
    _clean(app)
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def ctx(app):
    with app.test_request_context():
        yield


@pytest.fixture
def make_user(app):
    """Create a verified user; returns the user's id."""
    from portal.auth import service

    counter = iter(range(1, 10_000))

    def make(email=None, name=None, locale="en", verified=True, password=PASSWORD):
        n = next(counter)
        with app.app_context():
            user = service.create_user(
                name=name or f"User {n}",
                email=email or f"user{n}@clinic.example",
                password=password,
                locale=locale,
                now=utcnow(),
                verified=verified,
            )
            db.session.commit()
            return user.id

    return make


@pytest.fixture
def login(client, app):
    def do(user_id, password=PASSWORD):
        from portal.auth.models import User

        with app.app_context():
            email_address = db.session.get(User, user_id).email
        response = client.post("/login", data={"email": email_address, "password": password})
        assert response.status_code == 303, response.text
        return response

    return do


@pytest.fixture
def outbox(app):
    """The emails in the outbox table, oldest first."""

    def emails(to=None):
        from portal.outbox.models import OutboxMessage

        with app.app_context():
            rows = db.session.query(OutboxMessage).filter_by(kind="email").order_by("id").all()
            return [r.payload | {"status": r.status} for r in rows if to in (None, r.payload["to"])]

    return emails


def work_off_outbox(app) -> int:
    """Carry out what the outbox holds, as the worker does; return how many rows succeeded."""
    from portal.outbox.service import process_due

    done = 0
    with app.test_request_context():
        while batch := process_due():  # a row may queue more rows
            done += batch
    return done


@pytest.fixture
def run_outbox(app):
    return lambda: work_off_outbox(app)


# -- SMTP --
class CollectingHandler:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)
        return "250 Message accepted for delivery"


class SMTPSink:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.handler = CollectingHandler()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self):
        return self.handler.messages

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()

    def body(self, message) -> str:
        return message.get_body(preferencelist=("plain",)).get_content()


@pytest.fixture
def smtp_sink():
    sink = SMTPSink().start()
    yield sink
    sink.stop()


def later(**kwargs):
    return utcnow() + timedelta(**kwargs)


@pytest.fixture
def make_team(app, stripe_api):
    """Create a team whose owner has a real (local) Stripe subscription; returns team id."""
    from devtools.provision import provision_subscription
    from portal.auth.models import User
    from portal.teams import service as teams
    from portal.teams.models import Membership

    def make(owner_id, *, plan="pro", interval="month", name="Nørrebro Klinik", members=()):
        with app.test_request_context():
            owner = db.session.get(User, owner_id)
            provision_subscription(owner, plan=plan, interval=interval)
            team = teams.create_team(owner, name, now=utcnow())
            for user_id, role in members:
                db.session.add(
                    Membership(team=team, user_id=user_id, role=role, created_at=utcnow())
                )
            db.session.commit()
            return team.id

    return make
