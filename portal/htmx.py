"""The one place that reads and writes htmx headers (https://htmx.org/reference/#headers)."""

import json

from flask import Response, make_response, redirect, render_template, request


def is_htmx() -> bool:
    """Say whether this request came from htmx and wants a fragment, not a whole page."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
        and request.headers.get("HX-Boosted") != "true"
    )


def hx_redirect(location: str, status: int = 200) -> Response:
    """Leave the page: HX-Redirect (on a 200, or `status`) for htmx, a 303 otherwise."""
    if is_htmx():
        response = make_response("", status)
        response.headers["HX-Redirect"] = location
        return response
    return redirect(location, 303)


def hx_refresh() -> Response:
    """Have htmx reload the whole page (the state it polled for has arrived)."""
    response = make_response("", 200)
    response.headers["HX-Refresh"] = "true"
    return response


def announce(response: Response, message: str) -> Response:
    """Have portal.js read the message out through the page's aria-live region."""
    response.headers["HX-Trigger"] = json.dumps({"announce": str(message)})
    return response


def notify(response: Response, message: str, category: str = "success") -> Response:
    """Show the message in #flash (out of band, styled as its category) and announce it."""
    announce(response, message)
    flash_html = render_template("_flash_oob.html", message=message, category=category)
    response.set_data(response.get_data(as_text=True) + flash_html)
    return response


def retarget(response: Response, target: str, swap: str = "innerHTML") -> Response:
    """Have htmx swap the response into `target` instead of the element that asked."""
    response.headers["HX-Retarget"] = target
    response.headers["HX-Reswap"] = swap
    return response


def push_url(response: Response, url: str) -> Response:
    """Have htmx put `url` in the address bar and history (a bookmarkable page, not the
    partial's own URL)."""
    response.headers["HX-Push-Url"] = url
    return response


def vary(response: Response) -> Response:
    """Caches keep the page and its fragments apart: they share a URL."""
    response.vary.add("HX-Request")
    return response
