"""The only module that talks to Stripe. One StripeClient per app, built from its config."""

import logging
import time
from dataclasses import dataclass

import stripe
from flask import current_app, g, has_request_context

log = logging.getLogger(__name__)


class BillingUnavailableError(RuntimeError):
    """Stripe could not be reached or failed; the caller may retry later."""


class UnknownToStripeError(BillingUnavailableError):
    """Stripe answered that the object does not exist (another environment, or deleted)."""


class PaymentDeclinedError(RuntimeError):
    """Stripe refused a payment or a card."""


class InvalidTaxIdError(ValueError):
    """Stripe refused a VAT number."""


class WebhookSignatureError(ValueError):
    """A webhook payload whose signature or timestamp does not verify."""


@dataclass(frozen=True)
class Price:
    id: str
    lookup_key: str
    interval: str
    tiers: list[tuple[int | None, int]]


def lookup_key(plan: str, interval: str) -> str:
    return f"{plan}_{interval}"


class StripeGateway:
    def __init__(self, config, *, quick: bool = False):
        """quick: for reads a page shows while someone waits (price previews): one short try,
        then the page falls back to its own estimate."""
        base = config.get("STRIPE_API_BASE")
        self.local = bool(base)
        self.quick = quick
        read = config["STRIPE_PREVIEW_TIMEOUT"] if quick else config["STRIPE_READ_TIMEOUT"]
        retries = 0 if self.local or quick else config["STRIPE_MAX_RETRIES"]
        self.client = stripe.StripeClient(
            config["STRIPE_API_KEY"] or "sk_missing",
            base_addresses={"api": base} if base else {},
            # localstripe ignores idempotency keys, so the SDK's retries would duplicate objects.
            max_network_retries=retries,
            http_client=stripe.RequestsClient(
                timeout=(min(config["STRIPE_CONNECT_TIMEOUT"], read), read)
            ),
        )
        self.webhook_secret = config.get("STRIPE_WEBHOOK_SECRET")
        self.tolerance = config.get("STRIPE_WEBHOOK_TOLERANCE", 300)
        self.currency = config["CURRENCY"]

    def _call(self, fn, *args, **kwargs) -> dict:
        """Call the SDK; return plain dicts so no Stripe type leaks out of this module.

        A quick call in a request that already found Stripe not answering fails at once: a page
        waits for Stripe's timeout once, not once per call."""
        if self.quick and has_request_context() and g.get("stripe_not_answering"):
            raise BillingUnavailableError("Stripe did not answer earlier in this request")
        try:
            result = fn(*args, **kwargs)
            return result.to_dict() if hasattr(result, "to_dict") else result
        except stripe.CardError as error:
            raise PaymentDeclinedError(error.user_message or str(error)) from error
        except stripe.InvalidRequestError as error:
            if error.http_status == 404:
                raise UnknownToStripeError(str(error)) from error
            log.warning("Stripe call failed: %s: %s", type(error).__name__, error)
            raise BillingUnavailableError(str(error)) from error
        except stripe.APIConnectionError as error:
            log.warning("Stripe call failed: %s: %s", type(error).__name__, error)
            if self.quick and has_request_context():
                g.stripe_not_answering = True
            raise BillingUnavailableError(str(error)) from error
        except stripe.StripeError as error:
            log.warning("Stripe call failed: %s: %s", type(error).__name__, error)
            raise BillingUnavailableError(str(error)) from error

    # -- prices --
    def prices(self, keys: list[str]) -> dict[str, Price]:
        found = self._call(
            self.client.v1.prices.list,
            {"lookup_keys": keys, "active": True, "expand": ["data.tiers"], "limit": 100},
        )
        return {
            p["lookup_key"]: Price(
                id=p["id"],
                lookup_key=p["lookup_key"],
                interval=p["recurring"]["interval"],
                tiers=[
                    (
                        None if t["up_to"] in (None, "inf") else int(t["up_to"]),
                        int(t["unit_amount"]),
                    )
                    for t in (p.get("tiers") or [])
                ],
            )
            for p in found["data"]
        }

    def ensure_product(self, product_id: str, name: str) -> None:
        try:
            self.client.v1.products.retrieve(product_id)
        except stripe.InvalidRequestError:
            self._call(self.client.v1.products.create, {"id": product_id, "name": name})
        except stripe.StripeError as error:
            raise BillingUnavailableError(str(error)) from error

    def create_tiered_price(self, *, product: str, key: str, interval: str, tiers, nickname: str):
        return self._call(
            self.client.v1.prices.create,
            {
                "currency": self.currency,
                "product": product,
                "nickname": nickname,
                "recurring": {"interval": interval},
                "billing_scheme": "tiered",
                "tiers_mode": "volume",
                "tiers": [
                    {"up_to": "inf" if up_to is None else up_to, "unit_amount": amount}
                    for up_to, amount in tiers
                ],
                "lookup_key": key,
                "transfer_lookup_key": True,
            },
        )

    # -- customers and checkout --
    def create_customer(self, *, email: str, name: str, user_id: int, locale: str | None) -> str:
        return self._call(
            self.client.v1.customers.create,
            {
                "email": email,
                "name": name,
                "metadata": {"user_id": str(user_id)},
                "preferred_locales": [locale or "en"],
            },
        )["id"]

    def create_checkout_session(
        self,
        *,
        customer: str,
        price_id: str,
        quantity: int,
        team_id: int | None,
        user_id: int,
        trial_days: int | None,
        success_url: str,
        cancel_url: str,
        locale: str,
        idempotency_key: str,
    ):
        metadata = {"user_id": str(user_id)}
        if team_id:
            metadata["team_id"] = str(team_id)
        subscription_data = {"metadata": metadata}
        if trial_days:
            subscription_data["trial_period_days"] = trial_days
        return self._call(
            self.client.v1.checkout.sessions.create,
            {
                "mode": "subscription",
                "customer": customer,
                "client_reference_id": str(user_id),
                "line_items": [{"price": price_id, "quantity": quantity}],
                "subscription_data": subscription_data,
                "tax_id_collection": {"enabled": True},
                "customer_update": {"name": "auto", "address": "auto"},
                "billing_address_collection": "required",
                "success_url": success_url,
                "cancel_url": cancel_url,
                "locale": locale,
            },
            {"idempotency_key": idempotency_key},
        )

    def retrieve_checkout_session(self, session_id: str):
        return self._call(self.client.v1.checkout.sessions.retrieve, session_id)

    def create_portal_session(self, *, customer: str, return_url: str, locale: str):
        return self._call(
            self.client.v1.billing_portal.sessions.create,
            {"customer": customer, "return_url": return_url, "locale": locale},
        )

    # -- subscriptions --
    def retrieve_subscription(self, subscription_id: str):
        return self._call(self.client.v1.subscriptions.retrieve, subscription_id)

    def set_subscription_item(
        self,
        subscription,
        *,
        quantity: int,
        price_id: str | None,
        proration_behavior: str,
        idempotency_key: str,
        trial_end: int | None = None,
    ):
        """Set the absolute quantity (and the price) of the subscription's only item."""
        item = subscription["items"]["data"][0]
        change = {"id": item["id"], "quantity": quantity}
        if price_id:
            change["price"] = price_id
        params = {"items": [change], "proration_behavior": proration_behavior}
        if trial_end:
            params["trial_end"] = trial_end
        return self._call(
            self.client.v1.subscriptions.update,
            subscription["id"],
            params,
            {"idempotency_key": idempotency_key},
        )

    def set_subscription_metadata(self, subscription_id: str, metadata: dict, *, idempotency_key):
        return self._call(
            self.client.v1.subscriptions.update,
            subscription_id,
            {"metadata": metadata},
            {"idempotency_key": idempotency_key},
        )

    def cancel_subscription(self, subscription_id: str, *, idempotency_key: str):
        return self._call(
            self.client.v1.subscriptions.cancel,
            subscription_id,
            {"prorate": False},
            {"idempotency_key": idempotency_key},
        )

    def refund_once(self, *, charge: str, amount: int, idempotency_key: str) -> int:
        """Refund part of a charge unless it was refunded already (a retried job); the amount."""
        existing = self._call(self.client.v1.charges.retrieve, charge)
        if existing.get("amount_refunded"):
            return existing["amount_refunded"]
        self._call(
            self.client.v1.refunds.create,
            {"charge": charge, "amount": amount},
            {"idempotency_key": idempotency_key},
        )
        return amount

    def unused_amount(self, subscription, *, now_ts: int) -> tuple[int, str | None]:
        """The unused part of the last paid period, and the charge that paid it."""
        if subscription["status"] == "trialing":
            return 0, None
        invoices = self._call(
            self.client.v1.invoices.list, {"subscription": subscription["id"], "limit": 10}
        )
        paid = [i for i in invoices["data"] if i["status"] == "paid" and i["amount_paid"] > 0]
        item = subscription["items"]["data"][0]
        start, end = item.get("current_period_start"), item.get("current_period_end")
        if not paid or not (start and end and end > now_ts):
            return 0, None
        last = paid[0]
        unused = min(1.0, (end - max(now_ts, start)) / (end - start))
        charge = last.get("charge")
        if isinstance(charge, dict):
            charge = charge.get("id")
        if not charge and last.get("payment_intent"):
            intent = self._call(self.client.v1.payment_intents.retrieve, last["payment_intent"])
            charge = intent.get("latest_charge")
        return int(last["amount_paid"] * unused), charge

    def create_subscription_with_test_card(
        self, *, customer: str, price_id: str, quantity: int, trial_days: int | None, user_id: int
    ):
        """Development seeding only: a subscription paid by Stripe's test Visa card."""
        card = self._call(
            self.client.v1.payment_methods.attach, "pm_card_visa", {"customer": customer}
        )
        self._call(
            self.client.v1.customers.update,
            customer,
            {"invoice_settings": {"default_payment_method": card["id"]}},
        )
        params = {
            "customer": customer,
            "items": [{"price": price_id, "quantity": quantity}],
            "metadata": {"user_id": str(user_id)},
        }
        if trial_days:
            params["trial_period_days"] = trial_days
        return self._call(self.client.v1.subscriptions.create, params)

    # -- invoices --
    def list_invoices(self, customer: str, limit: int = 12):
        return self._call(self.client.v1.invoices.list, {"customer": customer, "limit": limit})[
            "data"
        ]

    def preview_invoice(self, subscription, *, quantity: int | None = None, price_id=None):
        params = {"customer": subscription["customer"], "subscription": subscription["id"]}
        if quantity is not None or price_id:
            item = subscription["items"]["data"][0]
            params["subscription_details"] = {
                "items": [
                    {
                        "id": item["id"],
                        "price": price_id or item["price"]["id"],
                        "quantity": quantity if quantity is not None else item["quantity"],
                    }
                ]
            }
        return self._call(self.client.v1.invoices.create_preview, params)

    # -- customers --
    def retrieve_customer(self, customer: str):
        return self._call(self.client.v1.customers.retrieve, customer, {"expand": ["tax_ids"]})

    def update_customer(self, customer: str, fields: dict):
        return self._call(self.client.v1.customers.update, customer, fields)

    def replace_tax_id(self, customer: str, value: str) -> None:
        """Add the new VAT number first, then remove the old ones (never left without one)."""
        old = self._call(self.client.v1.customers.tax_ids.list, customer)["data"]
        if value and any(t["value"] == value for t in old):
            return
        if value:
            try:
                self.client.v1.customers.tax_ids.create(
                    customer, {"type": "eu_vat", "value": value}
                )
            except stripe.InvalidRequestError as error:
                raise InvalidTaxIdError(str(error)) from error
            except stripe.StripeError as error:
                raise BillingUnavailableError(str(error)) from error
        for tax_id in old:
            self._call(self.client.v1.customers.tax_ids.delete, customer, tax_id["id"])

    # -- webhooks --
    def construct_event(self, payload: bytes, signature: str | None):
        if not signature or not self.webhook_secret:
            raise WebhookSignatureError("missing signature")
        # The SDK rejects only timestamps too far in the past; one from the future is as stale.
        stamps = [p[2:] for p in signature.split(",") if p.startswith("t=")]
        if not stamps or not stamps[0].isdigit() or int(stamps[0]) > time.time() + self.tolerance:
            raise WebhookSignatureError("timestamp missing or in the future")
        try:
            event = stripe.Webhook.construct_event(
                payload, signature, self.webhook_secret, tolerance=self.tolerance
            )
        except (ValueError, stripe.SignatureVerificationError) as error:
            raise WebhookSignatureError(str(error)) from error
        return event.to_dict()


def gateway(*, quick: bool = False) -> StripeGateway:
    """The app's gateway; quick=True the one with a short timeout and no retry."""
    app = current_app._get_current_object()
    name = "stripe_gateway_quick" if quick else "stripe_gateway"
    if name not in app.extensions:
        app.extensions[name] = StripeGateway(app.config, quick=quick)
    return app.extensions[name]
