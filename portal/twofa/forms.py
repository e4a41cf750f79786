from wtforms import HiddenField, StringField
from wtforms.validators import InputRequired, Length

from portal.auth.forms import password_check_field, strip
from portal.forms import Form
from portal.i18n import lazy_gettext as _l


def code_field(label=None) -> StringField:
    return StringField(
        label or _l("Code from the app"),
        filters=[strip],
        validators=[InputRequired(_l("Enter the code.")), Length(max=32)],
    )


class ConfirmForm(Form):
    """The first code, which proves the app has the secret."""

    code = code_field()


class LoginCodeForm(Form):
    code = code_field(_l("Code from the app, or a recovery code"))
    next = HiddenField()


class CodeForm(Form):
    """A current code, for making new recovery codes."""

    code = code_field(_l("Code from the app, or a recovery code"))


class DisableForm(Form):
    password = password_check_field()
    code = code_field(_l("Code from the app, or a recovery code"))
