from wtforms import SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired

from portal.forms import Form
from portal.i18n import lazy_gettext as _l


class OfferForm(Form):
    admin = SelectField(
        _l("New owner"),
        coerce=int,
        description=_l("Only admins of the team can become its owner."),
        validators=[InputRequired(_l("Choose the admin who takes over."))],
    )

    def __init__(self, candidates, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.admin.choices = [
            SelectChoice(m.id, f"{m.user.name} ({m.user.email})") for m in candidates
        ]
