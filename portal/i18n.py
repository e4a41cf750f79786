"""Language choice and the formats used in pages and emails."""

import re
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import dates as babel_dates
from babel import numbers as babel_numbers
from flask import current_app, g, request, session
from flask_babel import force_locale, get_locale, get_timezone, get_translations
from flask_babel.speaklater import LazyString
from flask_login import current_user
from jinja2 import pass_eval_context
from markupsafe import Markup, escape

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
    return _format_money(minor_units, currency, formats().locale)


@lru_cache(maxsize=1024)
def _format_money(minor_units: int, currency: str, locale: str) -> str:
    text = babel_numbers.format_currency(Decimal(minor_units) / 100, currency, locale=locale)
    # English writes a code without a symbol straight before the number ("DKK299.00").
    return re.sub(
        rf"^(-?){re.escape(currency)}(?=\d)", lambda m: f"{m[1]}{currency}\N{NO-BREAK SPACE}", text
    )


def translations():
    """Flask-Babel's catalogue for the current locale, looked up once per locale and request.

    flask_babel.get_translations() finds the locale and the catalogue again on every call, which
    adds up to a tenth of a page's time; force_locale() and refresh() replace the locale object,
    so comparing it by identity notices both.
    """
    try:
        request_globals = g._get_current_object()  # one proxy lookup instead of three
    except RuntimeError:  # no app context: Flask-Babel's NullTranslations
        return get_translations()
    state = getattr(request_globals, "_flask_babel", None)
    cached = getattr(state, "portal_translations", None)
    if cached is not None and cached[0] is getattr(state, "babel_locale", None):
        return cached[1]
    result = get_translations()
    state = request_globals._flask_babel
    state.portal_translations = (state.babel_locale, result)
    return result


def gettext(string: str, **variables) -> str:
    """flask_babel.gettext, with the catalogue from translations()."""
    text = translations().ugettext(string)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, num: int, **variables) -> str:
    """flask_babel.ngettext, with the catalogue from translations()."""
    variables.setdefault("num", num)
    return translations().ungettext(singular, plural, num) % variables


def lazy_gettext(string: str, **variables) -> LazyString:
    """For labels defined at import time: translated when shown."""
    return LazyString(gettext, string, **variables)


class Formats:
    """Dates in the request's language and time zone, with Babel called directly.

    Flask-Babel's format functions look the locale and time zone up again on every call, and
    long lists (members, invitations) show many dates: each stored value is formatted once per
    process, language and time zone. Stored datetimes are naive UTC.
    """

    def __init__(self):
        self.translations = translations()
        self.locale = str(get_locale())  # a cheaper cache key than Babel's Locale object
        # zoneinfo converts several times faster than Flask-Babel's pytz zone.
        self.timezone = ZoneInfo(get_timezone().zone)

    def date(self, value, fmt: str = "medium") -> str:
        return _format_date(value, fmt, self.locale, self.timezone) if value else ""

    def datetime(self, value, fmt: str = "medium") -> str:
        return _format_datetime(value, fmt, self.locale, self.timezone) if value else ""


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
    """The request's Formats, made again when the language changes (force_locale)."""
    current = g.get("portal_formats")
    if current is None or current.translations is not translations():
        current = g.portal_formats = Formats()
    return current


@lru_cache(maxsize=16)
def template_callables(catalogue) -> dict:
    """Jinja's newstyle `_()` and `ngettext()` (escaped result, always %-formatted) bound to one
    catalogue, one call each instead of Jinja's three nested context calls and a catalogue
    lookup: a page has about ninety of them. Flask-Babel keeps one catalogue per language."""
    ugettext, ungettext = catalogue.ugettext, catalogue.ungettext

    @pass_eval_context
    def gettext(eval_ctx, string: str, **variables) -> str:
        text = ugettext(string)
        if eval_ctx.autoescape:
            text = Markup(text)
        return text % variables if variables or "%" in text else text

    @pass_eval_context
    def ngettext(eval_ctx, singular: str, plural: str, num: int, **variables) -> str:
        variables.setdefault("num", num)
        text = ungettext(singular, plural, num)
        return (Markup(text) if eval_ctx.autoescape else text) % variables

    return {"_": gettext, "gettext": gettext, "ngettext": ngettext}


@pass_eval_context
def _template_gettext(eval_ctx, *args, **variables) -> str:
    """For a template rendered without render_template() (no context processors)."""
    return template_callables(translations())["_"](eval_ctx, *args, **variables)


@pass_eval_context
def _template_ngettext(eval_ctx, *args, **variables) -> str:
    return template_callables(translations())["ngettext"](eval_ctx, *args, **variables)


def init_app(app) -> None:
    babel.init_app(app, locale_selector=select_locale)  # installs Jinja's i18n extension
    app.jinja_env.globals.update(
        _=_template_gettext, gettext=_template_gettext, ngettext=_template_ngettext
    )
    # Each render_template() binds them to the request's catalogue once.
    app.context_processor(lambda: template_callables(translations()))
    app.jinja_env.globals.update(money=money, get_locale=get_locale)
    app.jinja_env.filters.update(
        date=lambda value, fmt="medium": formats().date(value, fmt),
        datetime=lambda value, fmt="medium": formats().datetime(value, fmt),
    )
