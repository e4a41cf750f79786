from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.auth.forms import strip
from portal.forms import Form
from portal.i18n import lazy_gettext as _l


class TemplateForm(Form):
    title = StringField(
        _l("Title"),
        filters=[strip],
        validators=[DataRequired(_l("Give the template a title.")), Length(max=120)],
    )
    specialty = StringField(
        _l("Specialty (optional)"), filters=[strip], validators=[Optional(), Length(max=80)]
    )
    body = TextAreaField(
        _l("Template"),
        description=_l("Plain text. Put each section heading on its own line, e.g. Findings:"),
        validators=[DataRequired(_l("Write the template's sections.")), Length(max=20000)],
    )
