"""Development and test only: localstripe, extended with what the portal needs from Stripe.

localstripe (GPL-3.0, a dev dependency, run as its own process) is a stateful Stripe API server.
It lacks Prices, Checkout Sessions, Customer Portal sessions and trials; this module adds them so
that the portal's code is the same against real Stripe and here (see docs/local-stripe.md).
Run: python -m devtools.localstripe_ext --port 8420 --webhook-url URL --webhook-secret SECRET
"""

import argparse
import html
import logging
import re
import time

from aiohttp import web
from localstripe import resources, server
from localstripe.errors import UserError
from localstripe.resources import (
    Customer,
    Event,
    Invoice,
    PaymentIntent,
    PaymentMethod,
    Plan,
    StripeObject,
    Subscription,
    SubscriptionItem,
    random_id,
    store,
)
from localstripe.webhooks import register_webhook, schedule_webhook

log = logging.getLogger("localstripe_ext")
PRICE_PREFIX = "price_"


# -- 1. No pickling of the whole store on every write (quadratic, and a shared /tmp file). --
resources.Store.dump_to_disk = lambda self: None


# -- 2. Request rewriting: the modern API's `price` and `proration_behavior`. --
_original_get_post_data = server.get_post_data


def _price_to_plan(items):
    for item in items or []:
        if isinstance(item, dict) and "price" in item:
            item["plan"] = item.pop("price")
        if isinstance(item, dict):
            item.pop("proration_behavior", None)


async def _get_post_data(request, remove_auth=True):
    data = await _original_get_post_data(request, remove_auth)
    if not data or not isinstance(data, dict):
        return data
    path = request.path
    if path.startswith("/v1/subscription") or path == "/v1/invoices/create_preview":
        behavior = data.pop("proration_behavior", None)
        data.pop("payment_behavior", None)
        data.pop("off_session", None)
        if behavior:
            request["proration_behavior"] = behavior
        _price_to_plan(data.get("items"))
        details = data.get("subscription_details")
        if isinstance(details, dict):
            details.pop("proration_behavior", None)
            _price_to_plan(details.get("items"))
        if "quantity" in data and path.startswith("/v1/subscription_items"):
            data["quantity"] = int(data["quantity"])
    return data


server.get_post_data = _get_post_data


# -- 3. Prices, stored as localstripe Plans with ids `price_…` and a lookup_key. --
def price_export(plan) -> dict:
    return {
        "id": plan.id,
        "object": "price",
        "active": plan.active,
        "billing_scheme": plan.billing_scheme,
        "created": plan.created,
        "currency": plan.currency,
        "livemode": False,
        "lookup_key": getattr(plan, "lookup_key", None),
        "metadata": plan.metadata,
        "nickname": plan.nickname,
        "product": plan.product,
        "recurring": {
            "interval": plan.interval,
            "interval_count": plan.interval_count,
            "usage_type": plan.usage_type,
        },
        "tiers": plan.tiers,
        "tiers_mode": plan.tiers_mode,
        "type": "recurring",
        "unit_amount": plan.amount,
    }


def _prices():
    return [v for k, v in store.items() if k.startswith("plan:" + PRICE_PREFIX)]


async def create_price(request):
    data = await server.get_post_data(request) or {}
    recurring = data.get("recurring") or {}
    tiers = data.get("tiers")
    if tiers:
        for tier in tiers:
            tier.setdefault("flat_amount", 0)
            tier["unit_amount"] = int(tier.get("unit_amount", 0))
            if tier["up_to"] != "inf":
                tier["up_to"] = int(tier["up_to"])
    plan = Plan(
        id=PRICE_PREFIX + random_id(14),
        product=data.get("product"),
        currency=data.get("currency"),
        interval=recurring.get("interval"),
        amount=int(data["unit_amount"]) if data.get("unit_amount") is not None else None,
        billing_scheme=data.get("billing_scheme", "per_unit"),
        tiers=tiers,
        tiers_mode=data.get("tiers_mode"),
        nickname=data.get("nickname"),
        metadata=data.get("metadata"),
    )
    lookup_key = data.get("lookup_key")
    if lookup_key and str(data.get("transfer_lookup_key")).lower() == "true":
        for other in _prices():
            if getattr(other, "lookup_key", None) == lookup_key:
                other.lookup_key = None
    elif lookup_key and any(getattr(p, "lookup_key", None) == lookup_key for p in _prices()):
        raise UserError(400, "A price with this lookup_key already exists")
    plan.lookup_key = lookup_key
    return server.json_response(price_export(plan))


async def list_prices(request):
    query = server.unflatten_data(request.query)
    keys = query.get("lookup_keys")
    if isinstance(keys, str):
        keys = [keys]
    prices = [p for p in _prices() if not keys or getattr(p, "lookup_key", None) in keys]
    return server.json_response(
        {
            "object": "list",
            "url": "/v1/prices",
            "has_more": False,
            "data": [price_export(p) for p in prices],
        }
    )


async def retrieve_price(request):
    return server.json_response(price_export(Plan._api_retrieve(request.match_info["id"])))


# -- 4. Subscription items in the modern shape. --
SubscriptionItem.price = property(lambda self: price_export(self.plan))
SubscriptionItem.current_period_start = property(lambda self: self._current_period()["start"])
SubscriptionItem.current_period_end = property(lambda self: self._current_period()["end"])


# -- 5. Trials that report `trialing`; events localstripe never sends. --
_original_subscription_init = Subscription.__init__


def _subscription_init(self, *args, **kwargs):
    days = kwargs.get("trial_period_days")
    _original_subscription_init(self, *args, **kwargs)
    if days or self.trial_end:
        self.status = "trialing"
        self.trial_start = int(time.time())
        self.trial_end = self.trial_end or self.trial_start + int(days) * 86400


Subscription.__init__ = _subscription_init
_original_subscription_update = Subscription._update


def _subscription_update(self, **data):
    metadata = data.get("metadata")
    _original_subscription_update(self, **data)
    if isinstance(metadata, dict):  # localstripe accepts metadata on update but drops it
        self.metadata = {**(self.metadata or {}), **metadata}
    if self.trial_end and int(self.trial_end) > time.time() and self.status == "active":
        self.status = "trialing"  # as Stripe does when an update sets a future trial_end
        self.trial_start = self.trial_start or int(time.time())
    schedule_webhook(Event("customer.subscription.updated", self))


Subscription._update = _subscription_update
_original_payment_success = Invoice._on_payment_success


def _invoice_paid(self):
    _original_payment_success(self)
    schedule_webhook(Event("invoice.paid", self))


Invoice._on_payment_success = _invoice_paid
_original_cancel = Subscription._api_delete.__func__


@classmethod
def _cancel(cls, id):
    obj = _original_cancel(cls, id)
    obj.canceled_at = obj.ended_at
    return obj


Subscription._api_delete = _cancel


# Danish VAT numbers (DK + 8 digits) have 10 characters; localstripe insists on more than 10.
_original_add_tax_id = Customer._api_add_tax_id.__func__


def _add_tax_id(cls, id, type=None, value=None, **kwargs):
    if type == "eu_vat" and isinstance(value, str) and re.fullmatch(r"[A-Z]{2}\w{8,12}", value):
        tax_id = resources.TaxId(customer=id, type=type, value=value.ljust(11))
        tax_id.value = value
        cls._api_retrieve(id).tax_ids._list.append(tax_id)
        return tax_id
    return _original_add_tax_id(cls, id, type=type, value=value, **kwargs)


Customer._api_add_tax_id = classmethod(_add_tax_id)


# -- 6. Checkout Sessions with a local test-card page. --
class CheckoutSession(StripeObject):
    object = "checkout.session"
    _id_prefix = "cs_test_"

    def __init__(self, base_url, **data):
        line_items = data.get("line_items") or []
        if data.get("mode") != "subscription" or len(line_items) != 1:
            raise UserError(400, "Only mode=subscription with one line item is supported")
        if not data.get("success_url") or not data.get("cancel_url"):
            raise UserError(400, "success_url and cancel_url are required")
        Plan._api_retrieve(line_items[0]["price"])
        super().__init__()
        self.customer = data.get("customer") or Customer(email=data.get("customer_email")).id
        self.mode = "subscription"
        self.status = "open"
        self.payment_status = "unpaid"
        self.customer_email = data.get("customer_email")
        self.client_reference_id = data.get("client_reference_id")
        self.metadata = data.get("metadata") or {}
        self.line_items = line_items
        self.subscription_data = data.get("subscription_data") or {}
        self.success_url = data["success_url"]
        self.cancel_url = data["cancel_url"]
        self.locale = data.get("locale")
        self.tax_id_collection = data.get("tax_id_collection") or {}
        self.subscription = None
        self.url = f"{base_url}/checkout/{self.id}"


async def create_checkout_session(request):
    data = await server.get_post_data(request) or {}
    base = f"{request.scheme}://{request.host}"
    return server.json_response(CheckoutSession(base, **data)._export())


async def retrieve_checkout_session(request):
    obj = store.get("checkout.session:" + request.match_info["id"])
    if obj is None:
        raise UserError(404, "Not Found")
    return server.json_response(obj._export())


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;
color:#1a1a2e}}label{{display:block;margin-top:.8rem;font-weight:600}}input,select{{font:inherit;
padding:.45rem;width:100%;box-sizing:border-box;border:1px solid #667;border-radius:4px}}
button{{font:inherit;margin-top:1rem;padding:.6rem 1.2rem;background:#1d4ed8;color:#fff;border:0;
border-radius:4px;cursor:pointer}}button.secondary{{background:#fff;color:#1d4ed8;
border:1px solid #1d4ed8}}.error{{color:#b00020;font-weight:600}}.note{{background:#fef9c3;
padding:.6rem;border-radius:4px}}table{{border-collapse:collapse;width:100%}}td,th{{text-align:left;
padding:.3rem;border-bottom:1px solid #ddd}}:focus-visible{{outline:3px solid #f59e0b}}</style>
</head><body><p class="note">Local Stripe test mode: no real money moves.</p>{body}</body></html>"""

TEST_CARDS = (
    "<p>Test cards: <code>4242 4242 4242 4242</code> succeeds, "
    "<code>4000 0000 0000 0341</code> fails when charged, "
    "<code>4000 0000 0000 0002</code> is declined.</p>"
)


def _page(title, body, status=200):
    return web.Response(
        text=PAGE.format(title=html.escape(title), body=body),
        content_type="text/html",
        status=status,
    )


def _card_fields():
    return (
        '<label for="card">Card number</label>'
        '<input id="card" name="card" inputmode="numeric" autocomplete="cc-number" required>'
        '<label for="exp">Expiry (MM/YY)</label>'
        '<input id="exp" name="exp" value="12/34" autocomplete="cc-exp" required>'
        '<label for="cvc">CVC</label>'
        '<input id="cvc" name="cvc" value="123" inputmode="numeric" autocomplete="cc-csc" required>'
    )


def _checkout_form(session, error=""):
    plan = Plan._api_retrieve(session.line_items[0]["price"])
    qty = int(session.line_items[0].get("quantity", 1))
    trial = session.subscription_data.get("trial_period_days")
    amount = f"{plan.amount / 100:.2f}" if plan.amount is not None else "tiered"
    summary = (
        f"<h1>Subscribe</h1><p>{html.escape(Customer._api_retrieve(session.customer).email or '')}"
        f"</p><p>{qty} × {html.escape(plan.nickname or plan.id)}, {plan.currency.upper()} "
        f"{amount if plan.amount is not None else _tier_amount(plan)} per {plan.interval}</p>"
    )
    if trial:
        summary += f"<p>{int(trial)}-day free trial: your card is charged when it ends.</p>"
    invoice = ""
    if session.tax_id_collection.get("enabled") in (True, "true", "True"):
        invoice = (
            "<fieldset><legend>Invoice details (optional)</legend>"
            '<label for="business_name">Clinic legal name</label>'
            '<input id="business_name" name="business_name">'
            '<label for="vat">VAT / CVR number (e.g. DK12345678)</label>'
            '<input id="vat" name="vat">'
            '<label for="line1">Address</label><input id="line1" name="line1">'
            '<label for="postal_code">Postal code</label>'
            '<input id="postal_code" name="postal_code">'
            '<label for="city">City</label><input id="city" name="city">'
            "</fieldset>"
        )
    err = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return _page(
        "Checkout",
        f"{summary}{err}{TEST_CARDS}<form method=post>{_card_fields()}{invoice}"
        f'<button type="submit">{"Start trial" if trial else "Pay and subscribe"}</button></form>'
        f'<p><a href="{html.escape(session.cancel_url)}">Cancel and go back</a></p>',
        status=402 if error else 200,
    )


def _tier_amount(plan):
    return f"{int(plan.tiers[0]['unit_amount']) / 100:.2f}"


def _card_payment_method(form):
    number = re.sub(r"\D", "", form.get("card", ""))
    month, _, year = form.get("exp", "").partition("/")
    try:
        card = {
            "number": number,
            "exp_month": int(month),
            "exp_year": 2000 + int(year) % 100,
            "cvc": re.sub(r"\D", "", form.get("cvc", "")),
        }
        return PaymentMethod(type="card", card=card)
    except (UserError, ValueError):
        raise UserError(400, "Your card number is incomplete.") from None


def _attach_card(customer_id, form, charge_now):
    pm = _card_payment_method(form)
    try:
        PaymentMethod._api_attach(pm.id, customer=customer_id)
    except UserError:
        raise UserError(402, "Your card was declined.") from None
    if charge_now and pm._charging_is_declined():
        raise UserError(402, "Your card was declined when we tried to charge it.")
    Customer._api_update(customer_id, invoice_settings={"default_payment_method": pm.id})
    return pm


async def checkout_page(request):
    session = store.get("checkout.session:" + request.match_info["id"])
    if session is None:
        return _page("Not found", "<h1>This checkout link is not valid.</h1>", 404)
    if session.status != "open":
        return web.HTTPSeeOther(session.success_url.replace("{CHECKOUT_SESSION_ID}", session.id))
    if request.method == "GET":
        return _checkout_form(session)
    form = await request.post()
    trial = session.subscription_data.get("trial_period_days")
    try:
        _attach_card(session.customer, form, charge_now=not trial)
    except UserError as error:
        return _checkout_form(session, _message(error))
    _save_invoice_details(session.customer, form)
    item = session.line_items[0]
    sub = Subscription(
        customer=session.customer,
        items=[{"plan": item["price"], "quantity": int(item.get("quantity", 1))}],
        trial_period_days=int(trial) if trial else None,
        metadata=session.subscription_data.get("metadata") or {},
    )
    session.status = "complete"
    session.payment_status = "no_payment_required" if trial else "paid"
    session.subscription = sub.id
    schedule_webhook(Event("checkout.session.completed", session))
    return web.HTTPSeeOther(session.success_url.replace("{CHECKOUT_SESSION_ID}", session.id))


def _save_invoice_details(customer_id, form):
    updates = {}
    if form.get("business_name"):
        updates["name"] = form["business_name"]
    address = {k: form[k] for k in ("line1", "postal_code", "city") if form.get(k)}
    if address:
        updates["address"] = {**address, "country": "DK"}
    if updates:
        Customer._api_update(customer_id, **updates)
    if form.get("vat"):
        try:
            Customer._api_add_tax_id(customer_id, type="eu_vat", value=form["vat"].strip())
        except UserError:
            log.info("ignored an invalid VAT number at checkout")


# -- 7. Customer Portal sessions with a local page for the portal's jobs. --
class PortalSession(StripeObject):
    object = "billing_portal.session"
    _id_prefix = "bps_"

    def __init__(self, base_url, customer=None, return_url=None, locale=None, **kwargs):
        Customer._api_retrieve(customer)
        super().__init__()
        self.customer = customer
        self.return_url = return_url
        self.locale = locale
        self.url = f"{base_url}/portal/{self.id}"


async def create_portal_session(request):
    data = await server.get_post_data(request) or {}
    base = f"{request.scheme}://{request.host}"
    return server.json_response(PortalSession(base, **data)._export())


def _customer_subscriptions(customer_id):
    return [
        s
        for k, s in store.items()
        if k.startswith("subscription:") and s.customer == customer_id and s.status != "canceled"
    ]


def _portal_body(session, message=""):
    customer = Customer._api_retrieve(session.customer)
    pm_id = customer.invoice_settings.get("default_payment_method")
    card = PaymentMethod._api_retrieve(pm_id).card["last4"] if pm_id else None
    rows = ""
    for sub in _customer_subscriptions(customer.id):
        item = sub.items._list[0]
        end = time.strftime("%Y-%m-%d", time.gmtime(sub.current_period_end))
        action, label = (
            ("resume", "Resume subscription")
            if sub.cancel_at_period_end
            else (
                "cancel",
                "Cancel at end of period",
            )
        )
        rows += (
            f"<tr><td>{html.escape(item.plan.nickname or item.plan.id)}</td>"
            f"<td>{item.quantity}</td><td>{sub.status}"
            f"{' (ends ' + end + ')' if sub.cancel_at_period_end else ''}</td><td>{end}</td>"
            f'<td><form method=post action="{session.id}/{action}">'
            f'<input type=hidden name=subscription value="{sub.id}">'
            f'<button class="secondary" type="submit">{label}</button></form></td></tr>'
        )
    invoices = "".join(
        f"<tr><td>{time.strftime('%Y-%m-%d', time.gmtime(inv.date))}</td>"
        f"<td>{inv.currency.upper()} {inv.total / 100:.2f}</td><td>{inv.status}</td><td>"
        + (
            f'<form method=post action="{session.id}/pay"><input type=hidden name=invoice '
            f'value="{inv.id}"><button type="submit">Pay now</button></form>'
            if inv.status == "open"
            else ""
        )
        + "</td></tr>"
        for inv in Invoice._api_list_all(None, customer=customer.id, limit=99)._list
    )
    note = f'<p role="status">{html.escape(message)}</p>' if message else ""
    return (
        f"<h1>Billing</h1>{note}<p>{html.escape(customer.email or '')}</p>"
        f"<h2>Subscription</h2><table><tr><th>Plan</th><th>Seats</th><th>Status</th>"
        f"<th>Period ends</th><th></th></tr>{rows}</table>"
        f"<h2>Payment method</h2><p>{'Card ending in ' + card if card else 'No card on file'}</p>"
        f'<form method=post action="{session.id}/card">{TEST_CARDS}{_card_fields()}'
        f'<button type="submit">Replace card</button></form>'
        f"<h2>Invoices</h2><table><tr><th>Date</th><th>Amount</th><th>Status</th><th></th></tr>"
        f"{invoices}</table>"
        f'<p><a href="{html.escape(session.return_url or "/")}">Return to the portal</a></p>'
    )


async def portal_page(request):
    session = store.get("billing_portal.session:" + request.match_info["id"])
    if session is None:
        return _page("Not found", "<h1>This billing link is not valid.</h1>", 404)
    action = request.match_info.get("action")
    if request.method == "GET" or not action:
        return _page("Billing", _portal_body(session))
    form = await request.post()
    message = ""
    try:
        if action == "card":
            _attach_card(session.customer, form, charge_now=False)
            message = "Your card was replaced."
        elif action in ("cancel", "resume"):
            sub = Subscription._api_retrieve(form.get("subscription", ""))
            if sub.customer != session.customer:
                raise UserError(404, "Not Found")
            sub._update(cancel_at_period_end=action == "cancel")
            message = (
                "Your subscription will end at the end of the period."
                if (action == "cancel")
                else "Your subscription continues."
            )
        elif action == "pay":
            message = _pay_open_invoice(session.customer, form.get("invoice", ""))
    except UserError as error:
        message = _message(error)
    return _page("Billing", _portal_body(session, message))


def _pay_open_invoice(customer_id, invoice_id):
    """Pay an open invoice with the default card, as the Customer Portal's "Pay" does."""
    invoice = Invoice._api_retrieve(invoice_id)
    if invoice.customer != customer_id or invoice.status != "open":
        raise UserError(404, "Not Found")
    if invoice.payment_intent:
        PaymentIntent._api_cancel(invoice.payment_intent)
        invoice.payment_intent = None
    Invoice._api_pay_invoice(invoice.id)
    if invoice.status != "paid":
        return "The payment failed. Try another card."
    if invoice.subscription:
        sub = Subscription._api_retrieve(invoice.subscription)
        if sub.status == "past_due":
            sub.status = "active"
            schedule_webhook(Event("customer.subscription.updated", sub))
    return "The invoice is paid."


# -- 8. Test and development helpers (never part of Stripe's API). --
async def set_subscription_state(request):
    """Set a subscription's status, trial end or period start, and send the matching event."""
    data = await server.get_post_data(request) or {}
    sub = Subscription._api_retrieve(request.match_info["id"])
    if "status" in data:
        sub.status = data["status"]
        if sub.status == "canceled":
            sub.ended_at = sub.canceled_at = int(time.time())
    if "trial_end" in data:
        sub.trial_end = int(data["trial_end"])
    if "start_date" in data:
        sub.start_date = int(data["start_date"])
    event_type = data.get("event", "customer.subscription.updated")
    event = Event(event_type, sub)
    schedule_webhook(event)
    return server.json_response({"event": event.id, "subscription": sub._export()})


async def renew_subscription(request):
    """Invoice the next period now and try to charge it, as Stripe does at renewal."""
    sub = Subscription._api_retrieve(request.match_info["id"])
    invoice = Invoice._api_create(customer=sub.customer, subscription=sub.id)
    if request.query.get("created", "").isdigit():  # the demo's history: a past renewal
        invoice.created = int(request.query["created"])
    invoice._finalize()
    Invoice._api_pay_invoice(invoice.id)
    intent = PaymentIntent._api_retrieve(invoice.payment_intent) if invoice.payment_intent else None
    if intent is not None and intent.status == "requires_action":
        sub.status = "past_due"
        schedule_webhook(Event("invoice.payment_action_required", invoice))
    elif invoice.status != "paid":
        sub.status = "past_due"
        schedule_webhook(Event("invoice.payment_failed", invoice))
    elif sub.status in ("trialing", "past_due"):
        sub.status = "active"
    schedule_webhook(Event("customer.subscription.updated", sub))
    return server.json_response({"invoice": invoice._export(), "status": sub.status})


# -- Hosted invoice pages: Stripe gives every invoice a page (hosted_invoice_url); so does this
# server, at the address the portal reached it on, so the billing page's links work locally. --
_base = {"url": ""}
_original_invoice_export = Invoice._export


def _invoice_export(self, *args, **kwargs):
    data = _original_invoice_export(self, *args, **kwargs)
    if _base["url"] and not data.get("hosted_invoice_url"):
        data["hosted_invoice_url"] = f"{_base['url']}/invoice/{self.id}"
    return data


Invoice._export = _invoice_export


async def invoice_page(request):
    invoice = store.get("invoice:" + request.match_info["id"])
    if invoice is None:
        return _page("Not found", "<h1>No such invoice.</h1>", 404)
    data = invoice._export()
    lines = "".join(
        f"<tr><td>{html.escape(line.get('description') or 'Seats')}</td>"
        f"<td>{line.get('quantity') or ''}</td><td>{line['amount'] / 100:,.2f}</td></tr>"
        for line in data["lines"]["data"]
    )
    created = time.strftime("%Y-%m-%d", time.gmtime(data.get("created") or 0))
    body = (
        f"<h1>Invoice {html.escape(data['id'])}</h1>"
        f"<p>Date: {created} · Status: {html.escape(str(data.get('status')))}</p>"
        "<table><thead><tr><th>Item</th><th>Quantity</th><th>Amount</th></tr></thead>"
        f"<tbody>{lines}</tbody></table>"
        f"<p><strong>Total: {data['total'] / 100:,.2f} {html.escape(data['currency'].upper())}"
        "</strong></p><p>(The local Stripe server's stand-in for Stripe's invoice page.)</p>"
    )
    return _page("Invoice", body)


def _message(error: UserError) -> str:
    return error.body["error"].get("message", "The request failed.")


def build_app():
    app = server.app
    routes = [
        ("POST", "/v1/prices", create_price),
        ("GET", "/v1/prices", list_prices),
        ("GET", "/v1/prices/{id}", retrieve_price),
        ("POST", "/v1/checkout/sessions", create_checkout_session),
        ("GET", "/v1/checkout/sessions/{id}", retrieve_checkout_session),
        ("POST", "/v1/billing_portal/sessions", create_portal_session),
        ("GET", "/checkout/{id}", checkout_page),
        ("POST", "/checkout/{id}", checkout_page),
        ("GET", "/portal/{id}", portal_page),
        ("POST", "/portal/{id}/{action}", portal_page),
        ("POST", "/_config/subscriptions/{id}", set_subscription_state),
        ("POST", "/_config/subscriptions/{id}/renew", renew_subscription),
        ("GET", "/invoice/{id}", invoice_page),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    for route in app.router.routes():
        if route.method == "POST" and route.resource.canonical == "/v1/customers/{id}/tax_ids":
            route._handler = server.api_extra(Customer._api_add_tax_id, route.resource.canonical)
    _allow_public_pages(app)
    return app


def _allow_public_pages(app):
    """The test-card and portal pages are opened by the browser, without an API key."""
    auth = server.auth_middleware

    @web.middleware
    async def auth_unless_page(request, handler):
        _base["url"] = _base["url"] or f"{request.scheme}://{request.host}"
        if request.path.startswith(("/checkout/", "/portal/", "/invoice/")):
            return await handler(request)
        return await auth(request, handler)

    index = list(app.middlewares).index(auth)
    app.middlewares[index] = auth_unless_page


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret")
    args = parser.parse_args(argv)
    app = build_app()
    if args.webhook_url and args.webhook_secret:
        register_webhook("portal", args.webhook_url, args.webhook_secret, None)
    logging.basicConfig(level=logging.WARNING)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
