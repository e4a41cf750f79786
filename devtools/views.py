"""Development-only pages; the blueprint is registered only when PORTAL_DEV is on."""

import re

from flask import Blueprint, render_template
from markupsafe import Markup, escape
from sqlalchemy import select

from portal.extensions import db
from portal.outbox.models import OutboxMessage

bp = Blueprint("dev", __name__, url_prefix="/dev", template_folder="templates")
LINK = re.compile(r"https?://[^\s<>\"]+")


def linkify(text: str) -> Markup:
    escaped = str(escape(text))
    return Markup(LINK.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped))


@bp.get("/mailbox")
def mailbox():
    emails = db.session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.kind == "email")
        .order_by(OutboxMessage.id.desc())
        .limit(100)
    ).all()
    return render_template("dev/mailbox.html", emails=emails, linkify=linkify)
