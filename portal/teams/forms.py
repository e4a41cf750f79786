from flask import current_app
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length

from portal.auth.forms import strip
from portal.forms import Form
from portal.i18n import lazy_gettext as _l
from portal.teams.models import ROLE_LABELS


def role_choices(roles) -> list[SelectChoice]:
    """The role options, each label translated once (a lazy label is translated again at
    every use)."""
    return [SelectChoice(role, str(ROLE_LABELS[role])) for role in roles]


class TeamNameForm(Form):
    name = StringField(
        _l("Team name"),
        filters=[strip],
        validators=[
            DataRequired(_l("Give the team a name.")),
            Length(max=80, message=_l("Use at most 80 characters.")),
        ],
    )


class TeamSettingsForm(TeamNameForm):
    locale = SelectField(
        _l("Team language"), description=_l("Used for emails to people without an account.")
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.locale.choices = [
            SelectChoice(code, label) for code, label in current_app.config["LANGUAGES"].items()
        ]


# The invite box's hint, shown by teams/_invite.html (plain text: it holds a <...> example).
INVITE_HINT = _l(
    "Paste addresses from your mail program or a spreadsheet: one per line, or separated "
    "by commas or semicolons. Names like Anna Jensen <anna@klinik.dk> are kept."
)


class InviteForm(Form):
    """What the invite box (written in teams/_invite.html) posts."""

    emails = TextAreaField(
        _l("Email addresses"),
        description=INVITE_HINT,
        validators=[InputRequired(_l("Enter at least one email address."))],
    )
    role = SelectField(_l("Role"), default="member")

    def __init__(self, roles, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.role.choices = role_choices(roles)


class CsvInviteForm(Form):
    """The CSV upload: rows of email,name,role, previewed before anything is sent."""

    csv = FileField(
        _l("CSV file"),
        description=_l(
            "One person per row: email,name,role (member, admin or assistant). Name and role may "
            "be blank; a blank role takes the role chosen here."
        ),
        validators=[
            FileRequired(_l("Choose a CSV file.")),
            FileAllowed(["csv", "txt"], _l("Upload a .csv file.")),
        ],
    )
    role = SelectField(_l("Role for rows without one"), default="member")

    def __init__(self, roles, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.role.choices = role_choices(roles)


class RoleForm(Form):
    role = SelectField(_l("Role"))

    def __init__(self, roles, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.role.choices = role_choices(roles)
