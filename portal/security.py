"""Security headers and the CSP nonce; the policy allows htmx without eval or inline script."""

import secrets

from flask import Flask, g, request

CSP = (
    "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self' {form_targets}"
)


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def init_app(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def set_security_headers(response):
        # Checkout and the Customer Portal are reached by a 303 after a form post, so the
        # Stripe origin must be an allowed form target (CSP form-action covers redirects).
        stripe_origin = "https://checkout.stripe.com https://billing.stripe.com"
        if app.config["PORTAL_DEV"]:
            stripe_origin = f"http://127.0.0.1:{app.config['LOCAL_STRIPE_PORT']} " + (
                app.config.get("STRIPE_API_BASE") or ""
            )
        headers = response.headers
        headers.setdefault(
            "Content-Security-Policy",
            CSP.format(nonce=csp_nonce(), form_targets=stripe_origin.strip()),
        )
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        headers.setdefault("X-Frame-Options", "DENY")
        if not app.config["PORTAL_DEV"]:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if request.endpoint != "static":
            # Pages carry clinical and billing data: never cache them.
            headers.setdefault("Cache-Control", "no-store")
        response.vary.add("HX-Request")
        return response
