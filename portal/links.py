"""Links that leave the portal (emails, Stripe return URLs): built on PUBLIC_URL only.

A link built from the request would carry whatever Host header the request came with, so a
password-reset email could point at an attacker's site with a valid token in it.
"""

from urllib.parse import urlsplit

from flask import current_app


def public_url(endpoint: str, **values) -> str:
    """The absolute URL of an endpoint on the configured public origin, in a request or not."""
    base = urlsplit(current_app.config["PUBLIC_URL"])
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme
    )
    return adapter.build(endpoint, values, force_external=True)
