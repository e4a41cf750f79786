"""How requests use the database: plain rows for long lists, and how a request's transaction
ends."""

from collections import namedtuple
from functools import lru_cache

from sqlalchemy import event
from sqlalchemy.engine import Engine

from portal.extensions import db

# Set on a connection by any statement but a SELECT, cleared when a transaction begins.
WROTE = "portal_wrote"


def plain_rows(statement, row_type: type | None = None, **params) -> list:
    """Rows of plain columns for long read-only lists, run through Core on the session's
    connection: rows that are only shown need no ORM objects, identity map or change tracking.
    Flushes pending changes first.

    The rows are named tuples (`row_type`, or one made from the column names): SQLAlchemy's Row
    finds a column by name only after raising and discarding an AttributeError inside (Python
    3.11), where a named tuple's field is a plain attribute."""
    db.session.flush()
    result = db.session.connection().execute(statement, params)
    make = (row_type or _named_tuple(tuple(result.keys())))._make
    return [make(row) for row in result]


@lru_cache(maxsize=64)
def _named_tuple(fields: tuple) -> type:
    return namedtuple("PlainRow", fields, rename=True)


def end_request_transaction() -> None:
    """End the request's transaction: COMMIT if it only read, else ROLLBACK.

    Views commit what they mean to keep; whatever else they wrote is rolled back. A transaction
    that ran only SELECTs ends the same way with either, but psycopg forgets its prepared
    statements on every ROLLBACK, so pages that only read would have PostgreSQL parse and plan
    every query again on each request (docs/decisions.md, "Database and page speed").
    """
    session = db.session()
    if not session.in_transaction():
        return
    if (
        not session.is_active  # a failed flush the view caught: only a rollback ends it
        or session.new
        or session.dirty
        or session.deleted
        or session.connection().info.get(WROTE)
    ):
        session.rollback()
    else:
        session.commit()


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
