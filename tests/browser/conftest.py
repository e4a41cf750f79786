"""Browser fixtures: the portal under a real WSGI server, driven by Debian's Chromium."""

import re
import threading
import time
from pathlib import Path

import pytest
from babel.support import Translations
from werkzeug.serving import make_server

from portal import create_app
from portal.extensions import limiter
from tests.conftest import SMTPSink, StripeTestAPI, _clean, app_config, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
CATALOGUES = Path(__file__).resolve().parents[2] / "portal" / "translations"


def pytest_collection_modifyitems(items):
    for item in items:
        item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


class LiveServer:
    def __init__(self, app, url, mail, worker_lock):
        self.app, self.url, self.mail, self.worker_lock = app, url, mail, worker_lock

    def wait_for_mail(self, to: str, subject_part: str = "", timeout: float = 10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in reversed(self.mail.messages):
                if message["To"] == to and subject_part in message["Subject"]:
                    return message
            time.sleep(0.1)
        raise AssertionError(f"no email to {to} ({subject_part!r})")

    def link_in(self, message, path: str) -> str:
        body = self.mail.body(message)
        return re.search(r"http://\S+" + re.escape(path) + r"\S*", body).group(0)


def run_worker(app, stop: threading.Event, lock: threading.Lock) -> None:
    """The outbox worker beside the web server, polling as `flask worker` does on SQLite.
    It holds `lock` while it works, so a test's clean-up never truncates tables under it
    (PostgreSQL would find the two deadlocked)."""
    from portal.outbox.service import process_due

    while not stop.is_set():
        with lock, app.test_request_context():
            process_due()
        stop.wait(0.2)


@pytest.fixture(scope="module")
def live(database_url, local_stripe):
    mail = SMTPSink().start()
    port = free_port()
    app = create_app(
        app_config(
            database_url,
            local_stripe,
            SERVER_NAME=None,
            PUBLIC_URL=f"http://127.0.0.1:{port}",
            WTF_CSRF_ENABLED=True,
            MAIL_SERVER="127.0.0.1",
            MAIL_PORT=mail.port,
        )
    )
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stop, worker_lock = threading.Event(), threading.Lock()
    worker = threading.Thread(target=run_worker, args=(app, stop, worker_lock), daemon=True)
    worker.start()
    stripe = StripeTestAPI(local_stripe)
    stripe.register_webhook(f"http://127.0.0.1:{port}/billing/webhook")
    yield LiveServer(app, f"http://127.0.0.1:{port}", mail, worker_lock)
    stripe.register_webhook("http://127.0.0.1:9/muted", events=[])
    stop.set()
    worker.join(5)
    server.shutdown()
    thread.join(5)
    mail.stop()


@pytest.fixture
def live_stripe(live, local_stripe):
    api = StripeTestAPI(local_stripe)
    api.reset()
    live.mail.messages.clear()  # a test waits for its own emails, not an earlier test's
    with live.app.app_context():
        from portal.billing.service import bootstrap_prices

        limiter.reset()
        bootstrap_prices()
    yield api
    with live.worker_lock:
        _clean(live.app)


@pytest.fixture
def shot(page, request):
    SHOTS.mkdir(parents=True, exist_ok=True)

    def take(name):
        page.screenshot(path=str(SHOTS / f"{request.node.name}-{name}.png"), full_page=True)

    return take


def words(lang: str):
    """The page text a user of `lang` reads, from the shipped catalogue: a journey in Danish
    fails where a page shows English (tests/test_i18n.py makes the two differ)."""
    translations = Translations.load(CATALOGUES, [lang]) if lang != "en" else None

    def text(message: str, **variables) -> str:
        translated = translations.gettext(message) if translations else message
        return translated % variables if variables else translated

    def plural(singular: str, plural: str, num: int, **variables) -> str:
        if translations:
            translated = translations.ngettext(singular, plural, num)
        else:
            translated = singular if num == 1 else plural
        return translated % {"num": num, **variables}

    text.n = plural
    return text
