"""Logs an operator can use: request ids, access lines without secrets, text or JSON lines."""

import io
import json
import logging
import re
import sys
import types

import pytest

from portal import create_app, observability
from tests.conftest import app_config

ISO_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00"


def access_records(caplog):
    return [r for r in caplog.records if r.name == "portal.access"]


@pytest.fixture
def log_output(caplog):
    """Lines as the process's handler would write them, in the format asked for."""
    caplog.set_level(logging.INFO)
    handlers = []

    def attach(log_format="text"):
        stream = io.StringIO()
        handler = observability.make_handler(log_format, stream)
        logging.getLogger().addHandler(handler)
        handlers.append(handler)
        return stream

    yield attach
    for handler in handlers:
        logging.getLogger().removeHandler(handler)


@pytest.fixture
def app_that_logs(app):
    """The app with one page that logs a warning, as any view or service might."""

    def warn():
        logging.getLogger("portal.somewhere").warning("something to look at")
        return "logged"

    app.add_url_rule("/test/log", view_func=warn)
    return app


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/invitations/s3cr3t-token?utm=x", "/invitations/…"),
        ("/invitations/s3cr3t-token/accept", "/invitations/…/accept"),
        ("/password/reset/s3cr3t-token", "/password/reset/…"),
        ("/verify/s3cr3t-token?next=/a", "/verify/…"),
        ("/login?email=nina%40clinic.example", "/login"),
    ],
)
def test_access_line_has_status_and_duration_and_no_token_or_query(client, caplog, path, logged):
    caplog.set_level(logging.INFO, logger="portal.access")
    response = client.get(path)
    [record] = access_records(caplog)
    assert record.path == logged
    assert record.method == "GET"
    assert record.status == response.status_code
    assert record.duration_ms >= 0
    assert record.getMessage() == (
        f"GET {logged} {response.status_code} {record.duration_ms}ms user=-"
    )
    assert "s3cr3t" not in record.getMessage() and "?" not in record.getMessage()


def test_static_files_get_no_access_line(client, caplog):
    caplog.set_level(logging.INFO, logger="portal.access")
    assert client.get("/static/htmx-2.0.11.min.js").status_code == 200
    assert access_records(caplog) == []


def test_a_safe_request_id_from_the_proxy_is_kept_and_returned(client, caplog):
    caplog.set_level(logging.INFO, logger="portal.access")
    response = client.get("/login", headers={"X-Request-ID": "edge-01.A_b"})
    assert response.headers["X-Request-ID"] == "edge-01.A_b"


@pytest.mark.parametrize("hostile", ["a b", "x" * 65, "<script>", "id;drop=1", "ünïcode", "a/../b"])
def test_a_hostile_request_id_is_replaced(client, hostile):
    response = client.get("/login", headers={"X-Request-ID": hostile})
    assert re.fullmatch(r"[0-9a-f]{16}", response.headers["X-Request-ID"])


def test_without_a_request_id_each_request_gets_its_own(client):
    first = client.get("/login").headers["X-Request-ID"]
    second = client.get("/login").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{16}", first) and first != second


def test_every_line_during_a_request_carries_its_request_id(app_that_logs, log_output):
    stream = log_output("text")
    app_that_logs.test_client().get("/test/log", headers={"X-Request-ID": "probe-1"})
    warning, access = stream.getvalue().splitlines()[-2:]
    assert re.fullmatch(
        ISO_TIME + r" WARNING portal\.somewhere \[probe-1\] something to look at", warning
    )
    assert re.fullmatch(
        ISO_TIME + r" INFO portal\.access \[probe-1\] GET /test/log 200 [\d.]+ms user=-", access
    )


def test_lines_outside_a_request_have_no_request_id(log_output):
    stream = log_output("text")
    logging.getLogger("portal.worker").warning("no request here")
    assert "[-] no request here" in stream.getvalue()


def test_json_lines_parse_and_carry_the_access_fields(app_that_logs, log_output):
    stream = log_output("json")
    app_that_logs.test_client().get("/test/log", headers={"X-Request-ID": "probe-2"})
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    warning, access = lines[-2:]
    assert warning["level"] == "WARNING" and warning["logger"] == "portal.somewhere"
    assert warning["request_id"] == "probe-2" and warning["message"] == "something to look at"
    assert re.fullmatch(ISO_TIME, access["time"])
    assert access["logger"] == "portal.access"
    assert access["request_id"] == "probe-2"
    assert (access["method"], access["path"], access["status"]) == ("GET", "/test/log", 200)
    assert access["user_id"] is None and access["duration_ms"] >= 0


def test_access_lines_name_the_user_by_id_never_by_email(
    client, make_user, login, caplog, log_output
):
    stream = log_output("json")
    user_id = make_user(email="nina@clinic.example")
    login(user_id)
    client.get("/account")
    records = access_records(caplog)
    assert [r.user_id for r in records[-2:]] == [user_id, user_id]  # the log-in, then a page
    assert records[-1].getMessage().endswith(f"user={user_id}")
    assert "@" not in stream.getvalue()


def test_current_request_id_is_the_one_the_response_returns(app):
    seen = []

    def page():
        seen.append(observability.current_request_id())
        return ""

    app.add_url_rule("/test/id", view_func=page)
    response = app.test_client().get("/test/id")
    assert seen == [response.headers["X-Request-ID"]]
    with app.app_context():
        assert observability.current_request_id() is None


def test_logging_is_set_up_once_per_process(app):
    handlers = list(logging.getLogger().handlers)
    observability.setup_logging("DEBUG", "json")
    assert logging.getLogger().handlers == handlers


def test_sentry_dsn_without_sentry_sdk_logs_one_warning(
    database_url, local_stripe, caplog, monkeypatch
):
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)  # as if not installed
    with caplog.at_level(logging.WARNING, logger="portal.observability"):
        create_app(app_config(database_url, local_stripe, SENTRY_DSN="https://k@sentry.example/1"))
    [record] = [r for r in caplog.records if r.name == "portal.observability"]
    assert "sentry-sdk is not installed" in record.getMessage()


def test_sentry_reports_errors_without_personal_data_or_tokens(
    database_url, local_stripe, monkeypatch
):
    calls = []
    sentry_sdk = types.ModuleType("sentry_sdk")
    sentry_sdk.init = lambda **options: calls.append(options)
    flask_integration = types.ModuleType("sentry_sdk.integrations.flask")
    flask_integration.FlaskIntegration = lambda: "flask-integration"
    monkeypatch.setitem(sys.modules, "sentry_sdk", sentry_sdk)
    monkeypatch.setitem(sys.modules, "sentry_sdk.integrations", types.ModuleType("integrations"))
    monkeypatch.setitem(sys.modules, "sentry_sdk.integrations.flask", flask_integration)
    create_app(app_config(database_url, local_stripe, SENTRY_DSN="https://k@sentry.example/1"))
    [options] = calls
    assert options["dsn"] == "https://k@sentry.example/1"
    assert options["integrations"] == ["flask-integration"]
    assert options["send_default_pii"] is False
    event = {"request": {"url": "https://portal.example/invitations/s3cr3t", "query_string": "a"}}
    scrubbed = options["before_send"](event, {})
    assert scrubbed["request"] == {"url": "https://portal.example/invitations/…"}
