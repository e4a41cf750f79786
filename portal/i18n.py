"""Language choice and the formats used in pages and emails."""

from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal

from flask import current_app, g, request, session
from flask_babel import force_locale, format_currency, format_date, format_datetime, get_locale
from flask_login import current_user

from portal.extensions import babel


def select_locale() -> str:
    """Pick the user's language, else the browser's, else English."""
    languages = current_app.config["LANGUAGES"]
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    if session.get("locale") in languages:
        return session["locale"]
    return request.accept_languages.best_match(list(languages)) or "en"


@contextmanager
def language(locale: str | None):
    """Render in the given language (emails go out in the recipient's language)."""
    with force_locale(locale if locale in current_app.config["LANGUAGES"] else "en"):
        yield


def money(minor_units: int | None, currency: str | None = None) -> str:
    if minor_units is None:
        return "–"
    currency = (currency or current_app.config["CURRENCY"]).upper()
    return format_currency(Decimal(minor_units) / 100, currency)


def cached_date(value, fmt: str = "medium") -> str:
    """A date in the user's language and time zone, formatted once per hour value and request.

    Long lists (members, invitations) repeat the same dates; time-zone offsets change only on
    the hour, so the local date of a UTC time is the same for the whole UTC hour.
    """
    if not value:
        return ""
    cache = g.setdefault("formatted_dates", {})
    hour = (
        value.replace(minute=0, second=0, microsecond=0) if isinstance(value, datetime) else value
    )
    key = (hour, fmt, str(get_locale()))
    if key not in cache:
        cache[key] = format_date(value, fmt)
    return cache[key]


def init_app(app) -> None:
    babel.init_app(app, locale_selector=select_locale)
    app.jinja_env.globals.update(money=money, get_locale=get_locale)
    app.jinja_env.filters.update(
        date=cached_date,
        datetime=lambda value, fmt="medium": format_datetime(value, fmt) if value else "",
    )
