"""What templates get besides Flask's defaults: the `field` macro, a cached `url_for`, and a
faster attribute writer for WTForms' widgets.

wtforms.widgets.html_params builds every attribute with Markup.format, a string.Formatter
written in Python: the role select of the invite form (three options) cost as much as ten member
rows, and the invite form a sixth of the team page (docs/performance.md). This writes the same
HTML with an f-string; tests/test_templating.py compares it with WTForms' own.
"""

from functools import lru_cache

from flask import has_request_context, request, url_for
from markupsafe import Markup, escape
from wtforms import widgets
from wtforms.widgets import core

from portal.links import public_url

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

    @lru_cache(maxsize=4096)
    def path(script_root: str, endpoint: str, values: tuple) -> str:
        return url_for(endpoint, **{k: v for k, _type, v in values})

    def template_url_for(endpoint: str, **values) -> str:
        """url_for for templates, each path built once per app. A page links to about twenty
        paths and werkzeug takes about 8 µs to build one; a path depends only on the endpoint,
        its values and the script root (the app has no url_defaults and no host matching). `_external` and the other
        options, relative endpoints and calls outside a request go to url_for itself."""
        if endpoint[0] == "." or not has_request_context() or any(k[0] == "_" for k in values):
            return url_for(endpoint, **values)
        try:  # the type too: 1, 1.0 and True are equal keys but different URLs
            key = tuple(sorted((k, type(v), v) for k, v in values.items()))
            return path(request.script_root, endpoint, key)
        except TypeError:  # a value that cannot be a cache key
            return url_for(endpoint, **values)

    env.globals["url_for"] = template_url_for
    env.globals["public_url"] = public_url
    # The labelled field of templates/_field.html for every template, without an import in
    # each render (Jinja builds the imported module again for every render that imports it).
    env.globals["field"] = lambda *args, **kw: env.get_template("_field.html").module.field(
        *args, **kw
    )
    # Widgets call the module's function; Label calls widgets.html_params; Input and Button
    # keep their own reference as a static method.
    core.html_params = widgets.html_params = html_params
    core.Input.html_params = core.Button.html_params = staticmethod(html_params)
