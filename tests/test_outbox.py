import pytest

from portal.extensions import db
from portal.outbox import service
from portal.outbox.models import OutboxMessage
from tests.conftest import SMTPSink, free_port, later

SMTP_PORT = free_port()


def rows(app):
    with app.app_context():
        return db.session.query(OutboxMessage).order_by(OutboxMessage.id).all()


def sign_up(client, address="nina@clinic.example"):
    return client.post(
        "/signup", data={"name": "Nina", "email": address, "password": "a sunny day in aarhus"}
    )


@pytest.fixture
def app_overrides(request):
    marker = request.node.get_closest_marker("smtp_port")
    port = marker.args[0] if marker else SMTP_PORT
    return {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": port, "OUTBOX_MAX_ATTEMPTS": 3}


def test_email_goes_out_over_real_smtp_in_the_recipients_language(client, app, run_outbox):
    sink = SMTPSink(SMTP_PORT).start()
    try:
        sign_up(client)
        assert sink.messages == []  # the request only queued it
        assert run_outbox() == 1
        [message] = sink.messages
    finally:
        sink.stop()
    assert message["To"] == "nina@clinic.example"
    assert message["Subject"] == "Confirm your email address"
    assert "/verify/" in sink.body(message)
    assert message.get_body(preferencelist=("html",)) is not None
    [row] = rows(app)
    assert (row.status, row.attempts) == ("done", 1)


def test_smtp_down_then_back_delivers_once_and_late(client, app):
    response = sign_up(client)
    assert response.status_code == 200  # the sign-up itself succeeded
    with app.test_request_context():
        assert service.process_due() == 0
    [row] = rows(app)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "Connection refused" in row.last_error or "Errno" in row.last_error
    sink = SMTPSink(SMTP_PORT).start()
    try:
        with app.test_request_context():
            assert service.process_due(now=later(minutes=1)) == 1
            assert service.process_due(now=later(hours=2)) == 0
        assert len(sink.messages) == 1
    finally:
        sink.stop()
    [row] = rows(app)
    assert (row.status, row.attempts, row.last_error) == ("done", 2, None)


def test_retries_back_off_then_end_in_a_visible_failed_state(client, app):
    sign_up(client)
    with app.test_request_context():
        assert service.process_due() == 0  # SMTP is down
        assert service.process_due(now=later(seconds=10)) == 0  # not due yet: back-off
        assert rows(app)[0].attempts == 1
        service.process_due(now=later(minutes=1))
        service.process_due(now=later(minutes=5))
    [row] = rows(app)
    assert (row.status, row.attempts) == ("failed", 3)
    assert service.backoff(1).total_seconds() == 30 and service.backoff(20).total_seconds() == 3600


def test_a_claimed_row_is_not_run_twice(app):
    with app.test_request_context():
        message = service.enqueue("email", {"to": "x@clinic.example"}, key="k1")
        db.session.commit()
        first = service._claim(now=later(seconds=1), limit=10)
        second = service._claim(now=later(seconds=1), limit=10)
        assert first == [message.id] and second == []
        # A worker that died keeps the row only until its lease ends.
        assert service._claim(now=later(minutes=6), limit=10) == [message.id]


def test_the_same_idempotency_key_cannot_be_queued_twice(app):
    from sqlalchemy.exc import IntegrityError

    with app.test_request_context():
        service.enqueue("email", {"to": "x@clinic.example"}, key="same")
        with pytest.raises(IntegrityError):
            service.enqueue("email", {"to": "x@clinic.example"}, key="same")


@pytest.mark.parametrize("app_overrides", [{"MAIL_SERVER": None}])
def test_dev_mailbox_lists_sent_emails_newest_first_with_links(client, app):
    sign_up(client, "first@clinic.example")
    sign_up(client, "second@clinic.example")
    page = client.get("/dev/mailbox").text
    assert page.index("second@clinic.example") < page.index("first@clinic.example")
    assert '<a href="http://localhost/verify/' in page


def test_a_row_carries_the_id_of_the_request_that_wrote_it(app):
    from flask import g

    with app.test_request_context():
        g.request_id = "req-42"
        message = service.enqueue("email", {"to": "x@clinic.example"}, key="rid")
        assert message.payload["request_id"] == "req-42"
