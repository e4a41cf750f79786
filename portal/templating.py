"""What templates get besides Flask's and Flask-Babel's defaults: the `field` macro and
`public_url`."""

from portal.links import public_url


def init_app(app) -> None:
    env = app.jinja_env
    env.globals["public_url"] = public_url
    # The labelled field of templates/_field.html for every template, without an import in
    # each render (Jinja builds an imported template's module again for every render that
    # imports it; Template.module is built once). The macro reads only its arguments.
    env.globals["field"] = lambda *args, **kw: env.get_template("_field.html").module.field(
        *args, **kw
    )
