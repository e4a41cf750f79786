from wtforms import PasswordField
from wtforms.validators import InputRequired, Length

from portal.auth.forms import work_email_field
from portal.forms import Form
from portal.i18n import lazy_gettext as _l


class EmailChangeForm(Form):
    email = work_email_field(_l("New email address"))
    current_password = PasswordField(
        _l("Current password"), validators=[InputRequired(), Length(max=256)]
    )
