from wtforms import IntegerField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from portal.auth.forms import name_field, strip, work_email_field
from portal.forms import Form
from portal.i18n import lazy_gettext as _l


class ContactForm(Form):
    name = name_field()
    email = work_email_field()
    clinic = StringField(
        _l("Clinic"), filters=[strip], validators=[DataRequired(), Length(max=160)]
    )
    clinicians = IntegerField(
        _l("Number of clinicians"),
        validators=[
            InputRequired(_l("Enter a number, for example 12.")),
            NumberRange(min=1, max=100000, message=_l("Enter a number from 1 upwards.")),
        ],
    )
    country = StringField(
        _l("Country"),
        filters=[strip],
        default="Danmark",
        validators=[DataRequired(), Length(max=80)],
    )
    message = TextAreaField(
        _l("Message (optional)"), filters=[strip], validators=[Length(max=5000)]
    )
