"""The outbox: side effects written with the change that causes them, carried out afterwards.

Only the worker carries rows out: no web request waits on SMTP or on a Stripe write. A row is
claimed with a conditional UPDATE (pending → running, with a lease), so two workers never run
it twice. On PostgreSQL the
candidate rows are picked with FOR UPDATE SKIP LOCKED, so many workers share the table.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from flask import current_app, render_template
from flask_mail import Message
from sqlalchemy import and_, or_, select, update

from portal.clock import utcnow
from portal.extensions import db, mail
from portal.i18n import language
from portal.outbox.models import OutboxMessage

log = logging.getLogger(__name__)
LEASE = timedelta(minutes=5)
HANDLERS: dict[str, Callable[[dict, str], None]] = {}
# Checks run before an email goes out; False drops it (e.g. the invitation was revoked).
EMAIL_GUARDS: dict[str, Callable[[dict], bool]] = {}


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
    message = OutboxMessage(
        kind=kind, payload=payload, idempotency_key=key, next_attempt_at=now or utcnow()
    )
    db.session.add(message)
    db.session.flush()
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
    if current_app.config.get("MAIL_SERVER"):
        message = Message(
            subject=payload["subject"],
            recipients=[payload["to"]],
            body=payload["text"],
            html=payload["html"],
            extra_headers={"X-Portal-Message": key},
        )
        mail.send(message)
    elif not current_app.config["PORTAL_DEV"]:
        raise RuntimeError("MAIL_SERVER is not configured")


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
    for message_id in candidates:
        result = db.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, due)
            .values(status="running", locked_until=now + LEASE)
        )
        if result.rowcount == 1:
            claimed.append(message_id)
    db.session.commit()
    return claimed


def _run(message_id: int) -> bool:
    message = db.session.get(OutboxMessage, message_id)
    try:
        HANDLERS[message.kind](message.payload, message.idempotency_key)
    except Exception as error:  # noqa: BLE001 - any failure is retried, then marked failed
        db.session.rollback()
        message = db.session.get(OutboxMessage, message_id)
        message.attempts += 1
        message.last_error = f"{type(error).__name__}: {error}"[:2000]
        if message.attempts >= current_app.config["OUTBOX_MAX_ATTEMPTS"]:
            message.status = "failed"
            _scrub(message)
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


def process_due(*, now: datetime | None = None, limit: int = 50) -> int:
    """Carry out due rows; return how many succeeded."""
    claimed = _claim(now=now or utcnow(), limit=limit)
    return sum(_run(message_id) for message_id in claimed)
