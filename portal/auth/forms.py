from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, InputRequired, Length, ValidationError

from portal.auth.service import PasswordPolicyError, check_password_policy
from portal.i18n import lazy_gettext as _l


def strip(value):
    return value.strip() if isinstance(value, str) else value


class NewPassword:
    """Check a new password against the policy, with the email it must not equal."""

    def __call__(self, form, field):
        email_field = getattr(form, "email", None)
        email = email_field.data or "" if email_field is not None else ""
        try:
            check_password_policy(field.data or "", email=email)
        except PasswordPolicyError as error:
            raise ValidationError(str(error)) from None


def name_field() -> StringField:
    return StringField(
        _l("Your name"), filters=[strip], validators=[DataRequired(), Length(max=120)]
    )


def work_email_field() -> EmailField:
    return EmailField(
        _l("Work email"),
        filters=[strip],
        validators=[
            DataRequired(),
            Email(_l("Enter an email address like name@clinic.dk.")),
            Length(max=254),
        ],
    )


class SignupForm(FlaskForm):
    name = name_field()
    email = work_email_field()
    password = PasswordField(_l("Password"), validators=[InputRequired(), NewPassword()])
    ref = HiddenField()


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), filters=[strip], validators=[InputRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[InputRequired(), Length(max=256)])
    next = HiddenField()


class ForgotPasswordForm(FlaskForm):
    email = EmailField(
        _l("Email"),
        filters=[strip],
        validators=[InputRequired(), Email(_l("Enter an email address like name@clinic.dk."))],
    )


class ResetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[InputRequired(), NewPassword()])


class ProfileForm(FlaskForm):
    name = name_field()


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[InputRequired()])
    password = PasswordField(_l("New password"), validators=[InputRequired(), NewPassword()])
