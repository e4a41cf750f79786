"""What people send: the base of every form, and the same rule for values read outside forms.

No text takes control characters: PostgreSQL refuses NUL in text, and a CR or LF in a name
would reach an email's headers. Only a multi-line field takes tab and line breaks.
"""

import re

from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, PasswordField, StringField, TextAreaField
from wtforms.validators import StopValidation
from wtforms.widgets import HiddenInput

from portal.i18n import get_translations, lazy_ngettext
from portal.i18n import lazy_gettext as _l

# The largest id and URL number: PostgreSQL's integer columns.
MAX_ID = 2**31 - 1
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def plain(value: str | None, *, multiline: bool = False) -> str:
    """A value read from the request outside a form: as sent, or "" if it has control
    characters (multiline: tabs and line breaks are allowed, as in a text area)."""
    pattern = CONTROL_IN_TEXT if multiline else CONTROL
    return "" if not value or pattern.search(value) else value


def row_id(value: str) -> int:
    """A row id read from the request (the type= of request.form.get or request.args.get): a
    whole number from 1 to MAX_ID, else ValueError, which makes get() return None."""
    number = int(value)
    if not 1 <= number <= MAX_ID:
        raise ValueError(value)
    return number


def page_number(value: str) -> int:
    """A page= query value, from 1 to MAX_ID (the type= of request.args.get)."""
    return min(max(1, int(value)), MAX_ID)


def _refuse_control_characters(pattern: re.Pattern):
    def check(form, field):
        if isinstance(field.data, str) and pattern.search(field.data):
            raise StopValidation(_l("Remove the special characters from this field."))

    return check


def _drop_control_characters(value):
    # A hidden field comes from a link, not from the person, who could not see an error on it.
    return "" if isinstance(value, str) and CONTROL.search(value) else value


# The messages of WTForms' own fields and validators that the portal's forms can show, so
# that `make translations` puts them in the portal's catalogue: WTForms ships no Danish one.
LIBRARY_MESSAGES = (
    _l("This field is required."),
    _l("Not a valid choice."),
    _l("Not a valid integer value."),
    _l("Not a valid date value."),
    _l("Invalid email address."),
    _l("Field must be between %(min)d and %(max)d characters long."),
    lazy_ngettext(
        "Field must be at least %(min)d character long.",
        "Field must be at least %(min)d characters long.",
        2,
    ),
    lazy_ngettext(
        "Field cannot be longer than %(max)d character.",
        "Field cannot be longer than %(max)d characters.",
        2,
    ),
    lazy_ngettext(
        "Field must be exactly %(max)d character long.",
        "Field must be exactly %(max)d characters long.",
        2,
    ),
)


class PortalCatalogue:
    """WTForms' translations object (Meta.get_translations) on the portal's catalogue, in the
    request's language. WTForms formats the message itself, so nothing is formatted here."""

    def gettext(self, string):
        return get_translations().ugettext(string)

    def ngettext(self, singular, plural, n):
        return get_translations().ungettext(singular, plural, n)


class Form(FlaskForm):
    """The base of every form: text fields refuse control characters, and WTForms' own
    messages are in the page's language."""

    class Meta:
        def get_translations(self, form):
            return PortalCatalogue()

        def bind_field(self, form, unbound_field, options):
            field = super().bind_field(form, unbound_field, options)
            if isinstance(field, HiddenField):
                field.filters = [*field.filters, _drop_control_characters]
            elif isinstance(field, PasswordField):
                pass  # never stored or shown: any character a person chose is theirs to use
            elif isinstance(field, StringField):
                pattern = CONTROL_IN_TEXT if isinstance(field, TextAreaField) else CONTROL
                field.validators = [_refuse_control_characters(pattern), *field.validators]
            return field


class IdField(IntegerField):
    """A hidden row id; one that is not a whole number from 1 to MAX_ID is a field error."""

    widget = HiddenInput()

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if self.data is not None and not 1 <= self.data <= MAX_ID:
            self.data = None
            raise ValueError(self.gettext("Not a valid integer value."))
