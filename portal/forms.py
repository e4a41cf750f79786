"""Form rendering: the `field` macro for every template, and a faster attribute writer for
WTForms' widgets.

wtforms.widgets.html_params builds every attribute with Markup.format, a string.Formatter
written in Python: the role select of the invite form (three options) cost as much as ten member
rows, and the invite form a sixth of the team page (docs/performance.md). This writes the same
HTML with an f-string; tests/test_forms.py compares it with WTForms' own on every kind of value.
"""

from markupsafe import Markup, escape
from wtforms import widgets
from wtforms.widgets import core

wtforms_html_params = core.html_params
QUOTE, ESCAPED_QUOTE = Markup('"'), Markup("&quot;")


def html_params(**kwargs) -> Markup:
    """Attributes sorted by name; True writes the bare name, False leaves it out."""
    params = []
    for key, value in sorted(kwargs.items()):
        key = escape(core.clean_key(key))
        if value is True:
            params.append(key)
        elif value is not False:
            # A Markup value is not escaped again, so its quotes still need escaping.
            params.append(f'{key}="{escape(value).replace(QUOTE, ESCAPED_QUOTE)}"')
    return Markup(" ".join(params))


def init_app(app) -> None:
    env = app.jinja_env
    # The labelled field of templates/_field.html for every template, without an import in
    # each render (Jinja builds the imported module again for every render that imports it).
    env.globals["field"] = lambda *args, **kw: env.get_template("_field.html").module.field(
        *args, **kw
    )
    # Widgets call the module's function; Label calls widgets.html_params; Input and Button
    # keep their own reference as a static method.
    core.html_params = widgets.html_params = html_params
    core.Input.html_params = core.Button.html_params = staticmethod(html_params)
