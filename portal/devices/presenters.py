"""What the account page shows about the user's signed-in devices."""

from datetime import datetime
from typing import NamedTuple

from portal.devices import service
from portal.devices.service import SessionRef
from portal.devices.useragent import describe


class DeviceView(NamedTuple):
    id: int
    name: str
    ip: str | None
    signed_in_at: datetime
    last_seen_at: datetime
    is_this: bool


def device_list(user, this: SessionRef | None, *, now: datetime) -> dict:
    """The user's live sessions for templates/devices/_sessions.html, this device first."""
    this_id = this.id if this is not None else None
    views = [
        DeviceView(
            r.id, describe(r.user_agent), r.ip, r.created_at, r.last_seen_at, r.id == this_id
        )
        for r in service.active_of(user.id, now=now)
    ]
    views.sort(key=lambda view: not view.is_this)  # stable: the rest stay newest first
    return {"devices": views, "other_devices": sum(not view.is_this for view in views)}
