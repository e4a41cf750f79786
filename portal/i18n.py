"""Language choice and the formats used in pages and emails.

gettext, ngettext, lazy_gettext and lazy_ngettext are Flask-Babel's, imported from here so that
the rest of the portal has one place for its language functions.
"""

import re
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from flask import current_app, request, session
from flask_babel import (
    force_locale,
    get_locale,
    get_timezone,
    get_translations,
    gettext,
    lazy_gettext,
    lazy_ngettext,
    ngettext,
)
from flask_login import current_user
from jinja2 import pass_context, pass_eval_context
from markupsafe import Markup, escape

from portal.extensions import babel

__all__ = [
    "formats",
    "get_translations",
    "gettext",
    "language",
    "lazy_gettext",
    "lazy_ngettext",
    "money",
    "ngettext",
]


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
    return _format_money(minor_units, currency, str(get_locale() or "en"))


@lru_cache(maxsize=1024)
def _format_money(minor_units: int, currency: str, locale: str) -> str:
    text = babel_numbers.format_currency(Decimal(minor_units) / 100, currency, locale=locale)
    # English writes a code without a symbol straight before the number ("DKK299.00").
    return re.sub(
        rf"^(-?){re.escape(currency)}(?=\d)", lambda m: f"{m[1]}{currency}\N{NO-BREAK SPACE}", text
    )


class Formats:
    """Dates in the request's language and time zone, with Babel called directly.

    Long lists (members, invitations) show many dates, and a team's rows repeat the same few
    values: each stored value is formatted once per process, language and time zone (a pure
    function of those, so the cache cannot go stale). Stored datetimes are naive UTC.
    """

    def __init__(self):
        self.locale = str(get_locale() or "en")
        # zoneinfo converts faster than the pytz zone Flask-Babel returns; same zone by name.
        self.timezone = ZoneInfo(str(get_timezone() or "UTC"))

    def date(self, value, fmt: str = "medium") -> str:
        return _format_date(value, fmt, self.locale, self.timezone) if value else ""

    def datetime(self, value, fmt: str = "medium") -> str:
        return _format_datetime(value, fmt, self.locale, self.timezone) if value else ""

    def local_date(self, value: datetime) -> date:
        """The calendar day a stored time falls on in the user's time zone."""
        return _local(value, self.timezone).date()


def _local(value: datetime, timezone: ZoneInfo) -> datetime:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(timezone)


# Escaped once here, so long lists can print the result as it is. The keys hold the stored
# value and the zone, not a converted time: aware times in two zones compare equal.
@lru_cache(maxsize=16384)
def _format_date(value: date | datetime, fmt: str, locale: str, timezone: ZoneInfo) -> Markup:
    if isinstance(value, datetime):
        value = _local(value, timezone).date()
    return escape(babel_dates.format_date(value, fmt, locale=locale))


@lru_cache(maxsize=4096)
def _format_datetime(value: datetime, fmt: str, locale: str, timezone: ZoneInfo) -> Markup:
    return escape(babel_dates.format_datetime(_local(value, timezone), fmt, locale=locale))


def formats() -> Formats:
    """The current language's and time zone's formats (force_locale included)."""
    return Formats()


def template_gettext() -> dict:
    """Template `_()`, `gettext()` and `ngettext()` for one render, on the current catalogue.

    Flask-Babel's Jinja callables ask get_translations() for the catalogue on every call, and a
    page has dozens of them; within one render_template() the language cannot change, so one
    call is enough. They behave as Jinja's newstyle gettext: escaped when autoescaping is on,
    always %-formatted (so "%%" is a percent sign).
    """
    catalogue = get_translations()

    @pass_eval_context
    def _gettext(eval_ctx, string: str, **variables) -> str:
        text = catalogue.ugettext(string)
        return (Markup(text) if eval_ctx.autoescape else text) % variables

    @pass_eval_context
    def _ngettext(eval_ctx, singular: str, plural: str, num: int, **variables) -> str:
        variables.setdefault("num", num)
        text = catalogue.ungettext(singular, plural, num)
        return (Markup(text) if eval_ctx.autoescape else text) % variables

    # The |date and |datetime filters' formats, also fixed for one render (see _date_filter).
    return {"_": _gettext, "gettext": _gettext, "ngettext": _ngettext, FORMATS_KEY: formats()}


FORMATS_KEY = "_portal_formats"


def _formats_of(context) -> Formats:
    """The render's formats (template_gettext() put them there), or the current ones for a
    template rendered without render_template()."""
    return context.get(FORMATS_KEY) or formats()


@pass_context
def _date_filter(context, value, fmt: str = "medium") -> str:
    return _formats_of(context).date(value, fmt)


@pass_context
def _datetime_filter(context, value, fmt: str = "medium") -> str:
    return _formats_of(context).datetime(value, fmt)


@lru_cache(maxsize=64)
def language_name(code: str, reader: str) -> str:
    """A language's name in the reader's language, as a sentence shows it ("engelsk" in
    Danish). Language pickers show each language in its own name instead (LANGUAGES)."""
    try:
        return Locale.parse(code).get_display_name(reader) or code
    except (ValueError, UnknownLocaleError):
        return code


def init_app(app) -> None:
    # Flask-Babel installs Jinja's i18n extension with its own gettext callables, used by
    # templates rendered outside render_template(); render_template() gets template_gettext().
    babel.init_app(app, locale_selector=select_locale)
    app.context_processor(template_gettext)
    app.jinja_env.globals.update(money=money, get_locale=get_locale)
    app.jinja_env.filters.update(
        # Each call of formats() asks Flask-Babel for the locale and the time zone; a list
        # shows a date per row, and the language cannot change within one render.
        date=_date_filter,
        datetime=_datetime_filter,
        language_name=lambda code: language_name(code, str(get_locale())),
    )
