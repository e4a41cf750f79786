"""Reading billing state that other features' queries build on (no rules, no side effects)."""

from sqlalchemy import exists

from portal.outbox.models import OutboxMessage


def seat_key_prefix(team_id) -> str:
    """The start of every seat-sync outbox key of one team (the key names its seat version)."""
    return f"seats:{team_id}:"


def seat_change_queued(key_prefix):
    """SQL: whether a seat change is queued or running (not yet in Stripe), for the team whose
    seat_key_prefix() is `key_prefix` (a value or a bound parameter).

    An expression, so the team page asks it inside a query it runs anyway."""
    return exists().where(
        OutboxMessage.kind == "sync_seats",
        OutboxMessage.idempotency_key.startswith(key_prefix),
        OutboxMessage.status.in_(("pending", "running")),
    )
