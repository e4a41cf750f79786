from wtforms import PasswordField
from wtforms.validators import InputRequired

from portal.auth.forms import NewPassword, name_field
from portal.forms import Form
from portal.i18n import lazy_gettext as _l


class InvitationSignupForm(Form):
    """Sign-up from an invitation: the email comes from the invitation, never from the form."""

    name = name_field()
    password = PasswordField(_l("Choose a password"), validators=[InputRequired(), NewPassword()])
