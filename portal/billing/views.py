import logging

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from portal import current, permissions
from portal.billing import service
from portal.billing.forms import InvoiceDetailsForm, PlanForm
from portal.billing.stripe_gateway import (
    BillingUnavailableError,
    UnknownToStripeError,
    WebhookSignatureError,
    gateway,
)
from portal.clock import utcnow
from portal.extensions import csrf, db
from portal.htmx import hx_redirect, hx_refresh, is_htmx
from portal.i18n import gettext as _
from portal.links import public_url
from portal.ownership import service as ownership
from portal.teams.queries import seat_counts

bp = Blueprint("billing", __name__)


def stripe_down_message() -> str:
    """One wording for every Stripe call a page waits on."""
    return _("Stripe is not answering. Nothing was changed or charged; try again in a minute.")


log = logging.getLogger(__name__)


@bp.post("/billing/checkout")
@login_required
def checkout():
    try:
        url = service.start_checkout(
            current_user,
            current.membership(),
            plan=request.form.get("plan", ""),
            interval=request.form.get("interval", ""),
            success_url=public_url("billing.checkout_done") + "?session_id={CHECKOUT_SESSION_ID}",
            cancel_url=public_url("account.show"),
            now=utcnow(),
        )
    except service.CheckoutNotAllowedError:
        me = current.membership()
        if permissions.is_owner(me):
            flash(_("You pay for your team: change its plan on the team's billing page."), "info")
            return hx_redirect(url_for("billing.team"))
        if me is not None:
            flash(_("Your team pays for your plan. Ask the team owner about changes."), "error")
        else:
            flash(_("You already have a plan. Change it under Manage billing."), "error")
        return hx_redirect(url_for("account.show"))
    except BillingUnavailableError:
        flash(stripe_down_message(), "error")
        return hx_redirect(url_for("account.show"))
    return hx_redirect(url)


@bp.get("/billing/checkout/done")
@login_required
def checkout_done():
    plan = service.plan_of(current_user, current.membership())
    if plan.plan != "free":
        flash(_("Welcome to %(plan)s!", plan=plan.name), "success")
        return hx_redirect(url_for("account.show"))
    return render_template("billing/confirming.html")


@bp.post("/billing/portal")
@login_required
def portal():
    subscription = service.own_subscription(current_user)
    if subscription is None:
        abort(403)
    me = current.membership()
    back = "billing.team" if me is not None else "account.show"
    try:
        session = gateway().create_portal_session(
            customer=subscription.stripe_customer_id,
            return_url=public_url(back),
            locale=current_user.locale or "en",
        )
    except BillingUnavailableError:
        flash(stripe_down_message(), "error")
        return hx_redirect(url_for("account.show"))
    ownership.card_checked(current_user, now=utcnow())  # a new owner has seen the card now
    db.session.commit()
    return hx_redirect(session["url"])


@bp.post("/billing/webhook")
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
    except UnknownToStripeError:
        # Another environment's object, or a deleted one: retrying for days would not help.
        db.session.rollback()
        log.warning(
            "webhook %s (%s) names an object Stripe does not know; ignored",
            event["id"],
            event["type"],
        )
        return {"status": "ignored"}, 200
    except Exception:
        db.session.rollback()
        log.exception("webhook %s (%s) failed; Stripe will retry", event["id"], event["type"])
        return {"error": "temporarily unable to handle the event"}, 500
    return {"status": "ok"}, 200


def _billing_admin():
    """Admins see the team's billing; everyone else gets 403 (and no link)."""
    me = current.membership()
    if me is None or not permissions.can_see_billing(me, me.team):
        abort(403)
    return me


def _page(me, *, plan_form=None, details_form=None, preview=None, status=200):
    team = me.team
    try:
        overview = service.team_overview(team)
    except BillingUnavailableError:
        overview = None
    changes = _changes(team)
    # Invoice details on their way to Stripe, else Stripe's, with Denmark until a country is set.
    details = {
        "country": "DK",
        **{k: v for k, v in (overview or {}).get("customer", {}).items() if v},
        **(changes["details_pending"].payload if changes["details_pending"] else {}),
    }
    paid_seats, free_seats = seat_counts(team.id)
    return render_template(
        "billing/team.html",
        me=me,
        team=team,
        overview=overview,
        paid_seats=paid_seats,
        free_seats=free_seats,
        plan_form=plan_form
        or PlanForm(formdata=None, plan=team.plan, interval=team.subscription.interval),
        details_form=details_form or InvoiceDetailsForm(formdata=None, **details),
        tiers=service.tier_prices(team.plan, team.subscription.interval),
        preview=preview,
        card_check=ownership.card_check_due(me, now=utcnow()),
        **changes,
    ), status


def _changes(team) -> dict:
    """Plan and invoice-detail changes on their way to Stripe, and the last ones that failed."""
    return {
        "plan_pending": service.billing_change_pending(team.id, "change_plan"),
        "plan_failed": service.billing_change_failed(team.id, "change_plan"),
        "details_pending": service.billing_change_pending(team.id, "update_invoice_details"),
        "details_failed": service.billing_change_failed(team.id, "update_invoice_details"),
        "owner_pending": service.billing_change_pending(team.id, "ownership_to_stripe"),
    }


def _billing_owner():
    """Only the owner changes billing: the payment is theirs."""
    me = _billing_admin()
    if not permissions.can_change_billing(me, me.team):
        abort(403)
    return me


@bp.get("/settings/teams/billing")
@login_required
def team():
    return _page(_billing_admin())


@bp.get("/settings/teams/billing/pending")
@login_required
def pending():
    """The notice of changes under way: htmx polls it, and reloads the page once Stripe has
    them (with a message for each change that went through)."""
    me = _billing_admin()
    if not is_htmx():
        return redirect(url_for("billing.team"), 303)
    changes = _changes(me.team)
    if changes["plan_pending"] or changes["details_pending"] or changes["owner_pending"]:
        return render_template("billing/_pending.html", **changes)
    if request.args.get("plan") and not changes["plan_failed"]:
        message = _(
            "The team's plan is now %(plan)s, billed %(cycle)s.",
            plan=service.PLAN_NAMES[me.team.plan],
            cycle=_("annually") if me.team.subscription.interval == "year" else _("monthly"),
        )
        flash(message, "success")
    if request.args.get("details") and not changes["details_failed"]:
        flash(_("Invoice details saved. They appear on the next invoice."), "success")
    if request.args.get("owner"):
        flash(_("You are now the team's billing contact in Stripe."), "success")
    return hx_refresh()


@bp.post("/settings/teams/billing/plan")
@login_required
def change_plan():
    """First the preview (price per seat, new total, proration) and a confirm button; the
    confirmed change goes to the worker, and the page shows it under way."""
    me = _billing_owner()
    form = PlanForm()
    if not form.validate_on_submit():
        return _page(me, plan_form=form, status=422)
    plan, interval = form.plan.data, form.interval.data
    try:
        if form.confirm.data != "yes":
            service.check_plan_change(me.team, plan=plan, interval=interval)
            preview = service.plan_change_preview(
                me.team, plan=plan, interval=interval, now=utcnow()
            )
            return _page(me, plan_form=form, preview=preview)
        service.request_plan_change(
            me.team, plan=plan, interval=interval, actor=me.user, now=utcnow()
        )
    except service.BillingRuleError as error:
        db.session.rollback()
        form.plan.errors.append(str(error))
        return _page(me, plan_form=form, status=409)
    db.session.commit()
    return redirect(url_for("billing.team"), 303)


@bp.post("/settings/teams/billing/details")
@login_required
def update_details():
    me = _billing_owner()
    form = InvoiceDetailsForm()
    if not form.validate_on_submit():
        return _page(me, details_form=form, status=422)
    service.request_invoice_details(me.team, form.data, actor=me.user, now=utcnow())
    db.session.commit()
    return redirect(url_for("billing.team"), 303)
