"""Extension objects, bound to the app in `create_app` with `init_app`."""

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
mail = Mail()
babel = Babel()
limiter = Limiter(key_func=get_remote_address)


def plain_rows(statement, **params) -> list:
    """Rows of plain columns for long read-only lists, run through Core on the session's
    connection: no statement building and no ORM result processing per call, which costs
    more than the database round trip (docs/performance.md). Flushes pending changes first."""
    db.session.flush()
    return db.session.connection().execute(statement, params).all()


def end_request_transaction() -> None:
    """End the request's transaction: COMMIT if it only read, else ROLLBACK.

    Views commit what they mean to keep; whatever else they wrote is rolled back. For a
    transaction that ran only SELECTs both end it the same way, but psycopg forgets its prepared
    statements on every ROLLBACK, so pages that only read would have PostgreSQL parse and plan
    every query again on each request (docs/performance.md).
    """
    session = db.session()
    if not session.in_transaction():
        return
    if session.new or session.dirty or session.deleted or session.connection().info.get(WROTE):
        session.rollback()
    else:
        session.commit()


WROTE = "portal_wrote"


@event.listens_for(Engine, "begin")
def _transaction_begins(conn):
    conn.info.pop(WROTE, None)


@event.listens_for(Engine, "before_cursor_execute")
def _note_writes(conn, cursor, statement, parameters, context, executemany):
    if statement.lstrip()[:6].upper() != "SELECT":
        conn.info[WROTE] = True


@event.listens_for(Engine, "connect")
def _sqlite_foreign_keys(dbapi_connection, connection_record):
    """Make SQLite enforce foreign keys, as PostgreSQL does."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
