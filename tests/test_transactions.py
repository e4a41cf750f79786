"""How a request's transaction ends: what a view did not commit is rolled back; a transaction
that only read ends with COMMIT, so psycopg keeps its prepared statements."""

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import IntegrityError

from portal import create_app
from portal.auth.models import User
from portal.extensions import db
from tests.conftest import app_config


@pytest.fixture
def probe_app(database_url, local_stripe, app):
    """A second app on the same database, with views that read, or write without committing."""
    probe = create_app(app_config(database_url, local_stripe))

    @probe.get("/probe/read")
    def read():
        statement = text("SELECT count(*) FROM users WHERE email LIKE :pattern")
        return str(db.session.execute(statement, {"pattern": "%@probe.example"}).scalar())

    @probe.get("/probe/flush")
    def flush():
        db.session.add(User(email="flushed@probe.example", name="F", password_hash="x"))
        db.session.flush()
        return "flushed"

    @probe.get("/probe/pending")
    def pending():
        db.session.add(User(email="pending@probe.example", name="P", password_hash="x"))
        return "pending"

    @probe.get("/probe/statement")
    def statement():
        db.session.execute(text("UPDATE users SET name = 'Changed'"))
        return "updated"

    @probe.get("/probe/failed-flush")
    def failed_flush():
        db.session.add(User(email="owner@clinic.example", name="Twin", password_hash="x"))
        try:
            db.session.flush()
        except IntegrityError:
            return "taken", 422  # caught, and no rollback: the session needs one
        return "flushed"

    @probe.get("/probe/prepared")
    def prepared():
        return str(db.session.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar())

    yield probe
    with probe.app_context():
        db.engine.dispose()


def endings(app):
    with app.app_context():
        engine = db.engine
    seen = []
    event.listen(engine, "commit", lambda conn: seen.append("commit"))
    event.listen(engine, "rollback", lambda conn: seen.append("rollback"))
    return seen


def test_a_request_that_only_reads_ends_with_commit(probe_app):
    seen = endings(probe_app)
    assert probe_app.test_client().get("/probe/read").text == "0"
    assert seen == ["commit"]


@pytest.mark.parametrize(
    "path", ["/probe/flush", "/probe/pending", "/probe/statement", "/probe/failed-flush"]
)
def test_what_a_view_did_not_commit_is_rolled_back(probe_app, make_user, path):
    make_user(email="owner@clinic.example", name="Owner")
    seen = endings(probe_app)
    assert probe_app.test_client().get(path).status_code in (200, 422)
    assert "commit" not in seen
    with probe_app.app_context():
        names = db.session.scalars(select(User.name).order_by(User.email)).all()
    assert names == ["Owner"]


def test_a_read_after_a_write_on_the_same_connection_ends_with_commit(probe_app):
    client = probe_app.test_client()
    seen = endings(probe_app)
    client.get("/probe/flush")
    client.get("/probe/read")
    assert seen == ["rollback", "commit"]


@pytest.mark.postgres
def test_postgresql_prepares_the_queries_of_pages_that_only_read(probe_app):
    client = probe_app.test_client()
    # psycopg prepares a statement on its sixth run on one connection, unless a ROLLBACK
    # made it forget the first five.
    counts = [int(client.get("/probe/prepared").text) for _ in range(7)]
    assert counts[0] == 0
    assert counts[-1] >= 1, counts
