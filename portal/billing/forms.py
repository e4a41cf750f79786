import re

from wtforms import EmailField, HiddenField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length, Optional, ValidationError

from portal.auth.forms import strip
from portal.forms import Form
from portal.i18n import lazy_gettext as _l

INTERVAL_LABELS = {"month": _l("Monthly"), "year": _l("Annual")}
PLAN_CHOICES = [SelectChoice("pro", "Pro"), SelectChoice("practice", "Practice")]
INTERVAL_CHOICES = [SelectChoice(value, label) for value, label in INTERVAL_LABELS.items()]


class PlanForm(Form):
    plan = SelectField(_l("Plan"), choices=PLAN_CHOICES)
    interval = SelectField(_l("Billing cycle"), choices=INTERVAL_CHOICES)
    confirm = HiddenField()  # "yes" once the owner has seen the preview


def vat_number(form, field):
    if field.data and not re.fullmatch(r"[A-Z]{2}[0-9A-Z]{2,12}", field.data):
        raise ValidationError(_l("Use the country code and number, for example DK12345678."))


class InvoiceDetailsForm(Form):
    name = StringField(
        _l("Clinic legal name"), filters=[strip], validators=[DataRequired(), Length(max=200)]
    )
    vat = StringField(
        _l("VAT / CVR number"),
        filters=[strip, lambda v: v.replace(" ", "").upper() if v else v],
        validators=[Optional(), vat_number],
    )
    email = EmailField(
        _l("Billing email"),
        filters=[strip],
        validators=[DataRequired(), Email(_l("Enter an email address like name@clinic.dk."))],
    )
    line1 = StringField(_l("Address"), filters=[strip], validators=[Length(max=200)])
    postal_code = StringField(_l("Postal code"), filters=[strip], validators=[Length(max=20)])
    city = StringField(_l("City"), filters=[strip], validators=[Length(max=100)])
    country = StringField(
        _l("Country code"),
        filters=[strip, lambda v: v.upper() if v else v],
        default="DK",
        validators=[DataRequired(), Length(min=2, max=2)],
    )
