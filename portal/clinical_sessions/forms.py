from wtforms import DateField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.auth.forms import strip
from portal.forms import Form, IdField
from portal.i18n import lazy_gettext as _l


class SessionForm(Form):
    title = StringField(
        _l("Title"),
        filters=[strip],
        description=_l("Something you recognise, without the patient's full name."),
        validators=[DataRequired(_l("Give the session a title.")), Length(max=160)],
    )
    date = DateField(
        _l("Date"), validators=[DataRequired(_l("Enter the date of the consultation."))]
    )
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=100000)])
    template_id = IdField(validators=[Optional()])
