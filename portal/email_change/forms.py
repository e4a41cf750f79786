from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Email, InputRequired, Length

from portal.auth.forms import AsciiAddress, strip
from portal.forms import Form
from portal.i18n import lazy_gettext as _l


class EmailChangeForm(Form):
    email = EmailField(
        _l("New email address"),
        filters=[strip],
        validators=[
            DataRequired(),
            Email(_l("Enter an email address like name@clinic.dk.")),
            AsciiAddress(),
            Length(max=254),
        ],
    )
    current_password = PasswordField(
        _l("Current password"), validators=[InputRequired(), Length(max=256)]
    )
