from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, InputRequired, Length

from portal.auth.forms import NewPassword, strip


class InvitationSignupForm(FlaskForm):
    """Sign-up from an invitation: the email comes from the invitation, never from the form."""

    name = StringField(
        _l("Your name"), filters=[strip], validators=[DataRequired(), Length(max=120)]
    )
    password = PasswordField(_l("Choose a password"), validators=[InputRequired(), NewPassword()])
