"""Redis trouble degrades and does not break log-in; /healthz and `worker-check` tell an operator."""

import logging
import socket
import time
from datetime import timedelta

import pytest

from portal import create_app
from portal.clock import utcnow
from portal.extensions import db
from portal.outbox.models import OutboxMessage
from tests.conftest import PASSWORD, app_config

REFUSING_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def silent_redis():
    """A port that accepts connections and never answers: a hung Redis."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"


def app_with_storage(database_url, local_stripe, uri, **overrides):
    # A second app on the same database: the `app` fixture resets its storage, which a dead
    # Redis refuses.
    return create_app(
        app_config(database_url, local_stripe, RATELIMIT_STORAGE_URI=uri, **overrides)
    )


def queue_row(app, *, waited: int, status: str = "pending", key: str = "k1") -> None:
    with app.app_context():
        db.session.add(
            OutboxMessage(
                kind="email",
                payload={},
                idempotency_key=key,
                status=status,
                next_attempt_at=utcnow() - timedelta(seconds=waited),
            )
        )
        db.session.commit()


def log_in(app):
    return app.test_client().post(
        "/login", data={"email": "nina@clinic.example", "password": PASSWORD}
    )


def test_login_works_and_warns_when_redis_refuses(make_user, database_url, local_stripe, caplog):
    make_user(email="nina@clinic.example")
    app = app_with_storage(database_url, local_stripe, REFUSING_REDIS)
    with caplog.at_level(logging.WARNING):
        assert log_in(app).status_code == 303
    assert any(
        r.levelno == logging.WARNING and "falling back to in-memory" in r.getMessage()
        for r in caplog.records
    )


def test_login_does_not_hang_when_redis_does_not_answer(
    make_user, database_url, local_stripe, silent_redis
):
    make_user(email="nina@clinic.example")
    app = app_with_storage(database_url, local_stripe, silent_redis)
    started = time.monotonic()
    assert log_in(app).status_code == 303
    assert time.monotonic() - started < 5  # RATELIMIT_STORAGE_OPTIONS' 1 s timeouts


def test_healthz_is_503_when_redis_is_down(database_url, local_stripe, silent_redis):
    app = app_with_storage(database_url, local_stripe, silent_redis)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["status"] == "unavailable"
    assert response.json["database"] == "ok"
    assert response.json["redis"] == "down"


def test_healthz_pings_redis_when_limits_are_counted_there(database_url, local_stripe):
    app = app_with_storage(database_url, local_stripe, "redis://127.0.0.1:6379/14")
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.json["redis"] == "ok"


def test_healthz_reports_how_long_the_oldest_due_row_has_waited(client, app):
    queue_row(app, waited=40, key="old")
    queue_row(app, waited=5, key="new")
    queue_row(app, waited=-600, key="later")  # not due yet
    queue_row(app, waited=9999, status="failed", key="given-up")
    response = client.get("/healthz")
    assert response.status_code == 200
    assert 40 <= response.json["outbox"]["oldest_due_seconds"] < 45


@pytest.mark.parametrize("app_overrides", [{"HEALTH_OUTBOX_MAX_AGE": 60}])
def test_healthz_is_503_when_no_worker_carries_out_the_outbox(client, app):
    queue_row(app, waited=61)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["status"] == "unavailable"
    assert response.json["database"] == "ok"
    assert response.json["outbox"]["oldest_due_seconds"] >= 61


def test_worker_check_passes_while_the_outbox_keeps_up(app):
    queue_row(app, waited=10)
    result = app.test_cli_runner().invoke(args=["worker-check"])
    assert result.exit_code == 0, result.output
    assert "ok" in result.stdout


def test_worker_check_fails_in_one_line_when_rows_wait_too_long(app):
    queue_row(app, waited=301)
    result = app.test_cli_runner().invoke(args=["worker-check"])
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert "waited 301 s (limit 300 s)" in line


def test_worker_check_fails_in_one_line_when_the_database_is_down():
    app = create_app(
        {
            "PORTAL_DEV": True,
            "SECRET_KEY": "t",
            "SQLALCHEMY_DATABASE_URI": "postgresql://nobody@127.0.0.1:1/none",
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"connect_timeout": 1}},
        }
    )
    result = app.test_cli_runner().invoke(args=["worker-check"])
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert "database does not answer" in result.stderr


def test_healthz_is_503_when_the_database_has_no_tables():
    app = create_app(
        {"PORTAL_DEV": True, "SECRET_KEY": "t", "SQLALCHEMY_DATABASE_URI": "sqlite://"}
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["database"] == "ok"
    assert response.json["outbox"] == {"oldest_due_seconds": None}
