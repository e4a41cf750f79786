from wtforms import EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, InputRequired, Length, ValidationError

from portal.auth.service import PasswordPolicyError, check_password_policy
from portal.forms import Form
from portal.i18n import lazy_gettext as _l


def strip(value):
    return value.strip() if isinstance(value, str) else value


class NewPassword:
    """Check a new password against the policy, with the form's email and name if it has them
    (the services check again with the account's own, on every path that sets a password)."""

    def __call__(self, form, field):
        given = {key: getattr(form, key).data or "" for key in ("email", "name") if key in form}
        try:
            check_password_policy(field.data or "", **given)
        except PasswordPolicyError as error:
            raise ValidationError(str(error)) from None


class AsciiAddress:
    """Refuse addresses with letters outside ASCII: mail servers without SMTPUTF8 cannot
    deliver to them, and every email we send goes to this address."""

    def __call__(self, form, field):
        if field.data and not field.data.isascii():
            raise ValidationError(
                _l("Use an address without letters like æ, ø or å: we cannot email it.")
            )


def name_field() -> StringField:
    return StringField(
        _l("Your name"), filters=[strip], validators=[DataRequired(), Length(max=120)]
    )


def work_email_field(label=None) -> EmailField:
    return EmailField(
        label or _l("Work email"),
        filters=[strip],
        validators=[
            DataRequired(),
            Email(_l("Enter an email address like name@clinic.dk.")),
            AsciiAddress(),
            Length(max=254),
        ],
    )


def password_check_field(label=None, **kwargs) -> PasswordField:
    """The user's current password, typed to log in or to confirm an action."""
    return PasswordField(
        label or _l("Your password"), validators=[InputRequired(), Length(max=256)], **kwargs
    )


class SignupForm(Form):
    name = name_field()
    email = work_email_field()
    password = PasswordField(_l("Password"), validators=[InputRequired(), NewPassword()])
    ref = HiddenField()


class LoginForm(Form):
    email = EmailField(_l("Email"), filters=[strip], validators=[InputRequired(), Length(max=254)])
    password = password_check_field(_l("Password"))
    next = HiddenField()


class ForgotPasswordForm(Form):
    email = EmailField(
        _l("Email"),
        filters=[strip],
        validators=[InputRequired(), Email(_l("Enter an email address like name@clinic.dk."))],
    )


class ResetPasswordForm(Form):
    password = PasswordField(_l("New password"), validators=[InputRequired(), NewPassword()])


class ProfileForm(Form):
    name = name_field()


class ChangePasswordForm(Form):
    current_password = PasswordField(_l("Current password"), validators=[InputRequired()])
    password = PasswordField(_l("New password"), validators=[InputRequired(), NewPassword()])


class ConfirmPasswordForm(Form):
    """The password again, before an action that needs a fresh sign-in (auth.reauth)."""

    FIELD = "confirm-password"  # its own name and id: the account page has other password fields
    password = password_check_field(name=FIELD, id=FIELD)
