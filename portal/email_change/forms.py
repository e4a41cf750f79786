from portal.auth.forms import password_check_field, work_email_field
from portal.forms import Form
from portal.i18n import lazy_gettext as _l


class EmailChangeForm(Form):
    email = work_email_field(_l("New email address"))
    # Its own id: the password change form on the same page has a current_password field too.
    current_password = password_check_field(_l("Current password"), id="email-change-password")
