from portal.auth.forms import password_check_field
from portal.forms import Form
from portal.i18n import lazy_gettext as _l
from portal.twofa.forms import code_field


class DeleteAccountForm(Form):
    # One field per check delete_account makes; a DeletionRefused names the field it belongs to.
    password = password_check_field()


class DeleteAccountWithCodeForm(DeleteAccountForm):
    """With two-step sign-in on: a code from the app, or a recovery code, as well."""

    code = code_field(_l("Code from the app, or a recovery code"))
