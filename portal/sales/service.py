"""Large clinics talk to sales: leads are stored and emailed to the sales inbox."""

from datetime import datetime

from flask import current_app
from sqlalchemy import select

from portal.auth.service import normalize_email
from portal.extensions import db
from portal.outbox.service import queue_email
from portal.sales.models import ContactLead


def record_lead(fields: dict, *, now: datetime) -> ContactLead:
    """Store the request and queue the email to sales in the same transaction."""
    lead = ContactLead(
        name=fields["name"],
        email=normalize_email(fields["email"]),
        clinic=fields["clinic"],
        clinicians=fields["clinicians"],
        country=fields["country"],
        message=fields.get("message") or "",
        created_at=now,
    )
    db.session.add(lead)
    db.session.flush()
    queue_email(
        to=current_app.config["SALES_EMAIL"],
        template="sales_lead",
        locale="en",
        key=f"lead:{lead.id}",
        now=now,
        lead=lead,
    )
    return lead


def all_leads() -> list[ContactLead]:
    return db.session.scalars(select(ContactLead).order_by(ContactLead.id)).all()
