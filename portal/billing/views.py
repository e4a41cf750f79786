import logging

from flask import Blueprint, abort, flash, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from portal.billing import service
from portal.billing.stripe_gateway import (
    BillingUnavailableError,
    WebhookSignatureError,
    gateway,
)
from portal.clock import utcnow
from portal.extensions import csrf, db
from portal.htmx import hx_redirect

bp = Blueprint("billing", __name__, url_prefix="/billing")
log = logging.getLogger(__name__)


@bp.post("/checkout")
@login_required
def checkout():
    try:
        url = service.start_checkout(
            current_user,
            plan=request.form.get("plan", ""),
            interval=request.form.get("interval", ""),
            success_url=url_for("billing.checkout_done", _external=True)
            + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=url_for("account.show", _external=True),
            now=utcnow(),
        )
    except service.CheckoutNotAllowedError:
        flash(_("You already have a plan. Change it under Manage billing."), "error")
        return hx_redirect(url_for("account.show"))
    except BillingUnavailableError:
        flash(
            _("Payments are unavailable right now. Nothing was charged; try again shortly."),
            "error",
        )
        return hx_redirect(url_for("account.show"))
    return hx_redirect(url)


@bp.get("/checkout/done")
@login_required
def checkout_done():
    plan = service.plan_of(current_user)
    if plan.plan != "free":
        flash(_("Welcome to %(plan)s!", plan=plan.name), "success")
        return hx_redirect(url_for("account.show"))
    return render_template("billing/confirming.html")


@bp.post("/portal")
@login_required
def portal():
    subscription = service.own_subscription(current_user)
    if subscription is None:
        abort(403)
    try:
        session = gateway().create_portal_session(
            customer=subscription.stripe_customer_id,
            return_url=url_for("account.show", _external=True),
            locale=current_user.locale or "en",
        )
    except BillingUnavailableError:
        flash(_("Billing is unavailable right now. Try again shortly."), "error")
        return hx_redirect(url_for("account.show"))
    return hx_redirect(session["url"])


@bp.post("/webhook")
@csrf.exempt
def webhook():
    try:
        event = gateway().construct_event(
            request.get_data(), request.headers.get("Stripe-Signature")
        )
    except WebhookSignatureError:
        return {"error": "invalid signature"}, 400
    try:
        service.handle_event(event, now=utcnow())
        db.session.commit()
    except service.DuplicateEventError:
        return {"status": "duplicate"}, 200
    except Exception:
        db.session.rollback()
        log.exception("webhook %s (%s) failed; Stripe will retry", event["id"], event["type"])
        return {"error": "temporarily unable to handle the event"}, 500
    return {"status": "ok"}, 200
