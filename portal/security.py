"""Security headers and the CSP nonce; the policy allows htmx without eval or inline script."""

import secrets

from flask import Flask, g, request

from portal.htmx import vary

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
        defaults = [
            (
                "Content-Security-Policy",
                CSP.format(nonce=csp_nonce(), form_targets=stripe_origin.strip()),
            ),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "strict-origin-when-cross-origin"),
            ("X-Frame-Options", "DENY"),
        ]
        if not app.config["PORTAL_DEV"]:
            defaults.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
        if request.endpoint != "static":
            # Pages carry clinical and billing data: never cache them.
            defaults.append(("Cache-Control", "no-store"))
        # What a view set stays. (Headers.setdefault() raises and catches an exception for each
        # header that is missing.)
        present = {name.lower() for name, _value in response.headers.items()}
        for name, value in defaults:
            if name.lower() not in present:
                response.headers.add(name, value)
        return vary(response)
