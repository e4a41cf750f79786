"""The outbox: side effects written with the change that causes them, carried out afterwards.

Only the worker carries rows out: no web request waits on SMTP or on a Stripe write. A row is
claimed with a conditional UPDATE (pending → running, with a lease), so two workers never run
it twice. On PostgreSQL the
candidate rows are picked with FOR UPDATE SKIP LOCKED, so many workers share the table.
"""

import hashlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app, g, has_request_context, render_template
from flask_mail import Message
from sqlalchemy import and_, delete, func, or_, select, text, update

from portal.clock import utcnow
from portal.extensions import db, mail
from portal.i18n import language
from portal.observability import current_request_id
from portal.outbox.models import OutboxMessage

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
CHANNEL = "portal_outbox"  # PostgreSQL LISTEN/NOTIFY channel of new rows
HANDLERS: dict[str, Callable[[dict, str], None]] = {}
# Checks run before an email goes out; False drops it (e.g. the invitation was revoked).
EMAIL_GUARDS: dict[str, Callable[[dict], bool]] = {}


class GiveUp(Exception):
    """A handler's failure that retrying cannot mend (Stripe refused the card or the VAT
    number): the row is marked failed at once, with this message, for the page and operators."""


def handler(kind: str):
    """Register the function that carries out outbox rows of this kind."""

    def register(fn):
        HANDLERS[kind] = fn
        return fn

    return register


def enqueue(
    kind: str, payload: dict, *, key: str, now: datetime | None = None, once: bool = False
) -> OutboxMessage:
    """Add a side effect to the current transaction; it runs only if the transaction commits.

    With once=True a row with the same key already queued (or done) is kept instead.
    """
    if once:
        existing = db.session.scalar(
            select(OutboxMessage).where(OutboxMessage.idempotency_key == key)
        )
        if existing is not None:
            return existing
    if request_id := current_request_id():  # the worker logs under the same id
        payload = {**payload, "request_id": request_id}
    message = OutboxMessage(
        kind=kind, payload=payload, idempotency_key=key, next_attempt_at=now or utcnow()
    )
    db.session.add(message)
    db.session.flush()
    if db.session.get_bind().dialect.name == "postgresql":
        # Delivered at commit (and not at all on rollback): a listening worker wakes at once.
        db.session.execute(text(f"NOTIFY {CHANNEL}"))
    return message


def queue_email(
    *,
    to: str,
    template: str,
    locale: str | None,
    key: str,
    now=None,
    guard: tuple[str, dict] | None = None,
    once: bool = False,
    **context,
) -> OutboxMessage:
    """Render an email (.txt and .html) in the recipient's language and put it in the outbox.

    The first line of the .txt template is the subject.
    """
    with language(locale):
        text = render_template(f"emails/{template}.txt", **context)
        html = render_template(f"emails/{template}.html", **context)
    subject, _, body = text.partition("\n")
    subject = " ".join(subject.split())  # a CR in a name would end the Subject header
    payload = {"to": to, "subject": subject, "text": body.strip() + "\n", "html": html}
    if guard:
        payload["guard"] = {"name": guard[0], "args": guard[1]}
    return enqueue("email", payload, key=key, now=now, once=once)


def email_user(user, template: str, *, key: str, **options) -> OutboxMessage:
    """queue_email to an account holder, in their language; the templates call them `user`."""
    return queue_email(
        to=user.email, template=template, locale=user.locale, key=key, user=user, **options
    )


@handler("email")
def send_email(payload: dict, key: str) -> None:
    guard = payload.get("guard")
    if guard and not EMAIL_GUARDS[guard["name"]](guard["args"]):
        log.info("outbox email %s dropped: no longer wanted", key)
        return
    config = current_app.config
    if not config["MAIL_ENABLED"]:
        log.info("outbox email %s not sent: MAIL_ENABLED is off", key)
    elif config.get("MAIL_SERVER"):
        message = Message(
            subject=payload["subject"],
            recipients=[payload["to"]],
            body=payload["text"],
            html=payload["html"],
            extra_headers={"X-Portal-Message": key},
        )
        # The same Message-ID on every attempt: if a worker dies after the server took the mail
        # and before the row is marked done, the resend is recognisably the same message.
        message.msgId = message_id(key)
        mail.send(message)
    elif not config["PORTAL_DEV"]:
        raise RuntimeError("MAIL_SERVER is not configured")


def message_id(key: str) -> str:
    """A Message-ID made from the outbox row's idempotency key (no token, no address in it)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<{digest}@{urlsplit(current_app.config['PUBLIC_URL']).hostname}>"


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), 3600))


def _claim(*, now: datetime, limit: int) -> list[int]:
    due = or_(
        and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.status == "running", OutboxMessage.locked_until < now),
    )
    query = select(OutboxMessage.id).where(due).order_by(OutboxMessage.id).limit(limit)
    candidates = db.session.scalars(query.with_for_update(skip_locked=True)).all()
    claimed = []
    for row_id in candidates:
        result = db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id, due)
            .values(status="running", locked_until=now + LEASE)
        )
        if result.rowcount == 1:
            claimed.append(row_id)
    db.session.commit()
    return claimed


def _run(message_id: int) -> bool:
    message = db.session.get(OutboxMessage, message_id)
    if has_request_context():  # the worker's context: its log lines carry the request's id
        g.request_id = message.payload.get("request_id")
    try:
        HANDLERS[message.kind](message.payload, message.idempotency_key)
    except Exception as error:  # noqa: BLE001 - any failure is retried, then marked failed
        db.session.rollback()
        message = db.session.get(OutboxMessage, message_id)
        message.attempts += 1
        message.last_error = f"{type(error).__name__}: {error}"[:2000]
        if (
            isinstance(error, GiveUp)
            or message.attempts >= current_app.config["OUTBOX_MAX_ATTEMPTS"]
        ):
            message.status = "failed"  # the payload stays, for `flask outbox retry`
            log.error("outbox %s (%s) failed for good: %s", message.id, message.kind, error)
        else:
            message.status = "pending"
            message.next_attempt_at = utcnow() + backoff(message.attempts)
            log.warning("outbox %s (%s) will be retried: %s", message.id, message.kind, error)
        message.locked_until = None
        db.session.commit()
        return False
    message.attempts += 1
    message.status = "done"
    message.done_at = utcnow()
    message.locked_until = None
    message.last_error = None
    _scrub(message)
    db.session.commit()
    return True


def _scrub(message: OutboxMessage) -> None:
    """An email's body may hold a link with a token: keep it no longer than needed to send it
    (development mode keeps it for /dev/mailbox)."""
    if message.kind == "email" and not current_app.config["PORTAL_DEV"]:
        message.payload = {"to": message.payload["to"], "subject": message.payload["subject"]}


def process_due(
    *, now: datetime | None = None, limit: int = 10, stopping: Callable[[], bool] = bool
) -> int:
    """Carry out due rows; return how many succeeded.

    A batch is small enough to finish within the lease even if every call runs into its timeout.
    Once stopping() is true (the worker got SIGTERM), the rows claimed but not started are
    released at once for another worker.
    """
    claimed = _claim(now=now or utcnow(), limit=limit)
    done = 0
    for index, row_id in enumerate(claimed):
        if stopping():
            release(claimed[index:])
            break
        done += _run(row_id)
    return done


def release(ids: list[int]) -> None:
    """Give claimed rows back (pending, no lease) without running them."""
    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids), OutboxMessage.status == "running")
        .values(status="pending", locked_until=None)
    )
    db.session.commit()


def failed_rows() -> list[OutboxMessage]:
    return db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.status == "failed").order_by(OutboxMessage.id)
    ).all()


def retry_failed(ids: list[int] | None, *, now: datetime) -> int:
    """Put failed rows (all of them, or these) back in the queue with fresh attempts."""
    query = update(OutboxMessage).where(OutboxMessage.status == "failed")
    if ids is not None:
        query = query.where(OutboxMessage.id.in_(ids))
    result = db.session.execute(
        query.values(status="pending", attempts=0, next_attempt_at=now, locked_until=None)
    )
    return result.rowcount


def delete_old(*, before: datetime) -> int:
    """Retention: forget rows carried out, or given up on, before this time."""
    result = db.session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.status.in_(("done", "failed")),
            func.coalesce(OutboxMessage.done_at, OutboxMessage.next_attempt_at) < before,
        )
    )
    return result.rowcount
