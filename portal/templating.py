"""What templates get besides Flask's and Flask-Babel's defaults: the `field` and `labelled`
macros and `public_url`."""

from portal.links import public_url


def init_app(app) -> None:
    env = app.jinja_env
    env.globals["public_url"] = public_url

    # The macros of templates/_field.html for every template, without an import in each render
    # (Jinja builds an imported template's module again for every render that imports it;
    # Template.module is built once). The macros read only their arguments.
    def macro(name):
        return lambda *args, **kw: getattr(env.get_template("_field.html").module, name)(
            *args, **kw
        )

    env.globals["field"] = macro("field")
    env.globals["labelled"] = macro("labelled")
