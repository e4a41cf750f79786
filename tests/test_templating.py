"""Template helpers: the attribute writer for WTForms' widgets writes exactly what WTForms' own
does, and the cached url_for builds exactly what url_for builds."""

import pytest
from markupsafe import Markup
from wtforms import Form, widgets
from wtforms.fields import BooleanField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length
from wtforms.widgets import core

from portal.templating import html_params, wtforms_html_params

CASES = [
    {},
    {"name": "emails", "id": "emails", "rows": 3},
    {"class_": "wide", "for_": "x", "data_hx_post": "/a?b=1&c=2", "aria_describedby": "e-hint"},
    {"checked": True, "disabled": False, "required": True, "value": "y"},
    {"value": 'He said "hi" <b>&</b>', "title": "O'Brien"},
    {"value": Markup('already "safe" <em>markup</em>')},
    {"value": 0, "maxlength": 80, "min": -1.5, "placeholder": None},
    {"value": "Nørrebro Lægehus ✓"},
]


@pytest.mark.parametrize("params", CASES)
def test_html_params_writes_what_wtforms_writes(params):
    assert html_params(**params) == wtforms_html_params(**params)
    assert isinstance(html_params(**params), Markup)


class Sample(Form):
    name = StringField("Name <b>", validators=[InputRequired(), Length(max=80)])
    notes = TextAreaField("Notes", default='a "quoted" <note>')
    role = SelectField(
        "Role", choices=[SelectChoice("member", "Member"), SelectChoice("admin", 'Admin "A"')]
    )
    agree = BooleanField("Agree", default=True)
    submit = SubmitField("Save")


def rendered() -> list[str]:
    form = Sample()
    return [
        str(html)
        for field in form
        for html in (field.label(), field(class_="x", data_value='"q"', aria_describedby="h"))
    ]


def test_every_widget_renders_the_same_with_either_writer(app, monkeypatch):
    assert core.html_params is html_params  # installed by create_app
    ours = rendered()
    monkeypatch.setattr(core, "html_params", wtforms_html_params)
    monkeypatch.setattr(widgets, "html_params", wtforms_html_params)
    monkeypatch.setattr(core.Input, "html_params", staticmethod(wtforms_html_params))
    monkeypatch.setattr(core.Button, "html_params", staticmethod(wtforms_html_params))
    assert rendered() == ours
    assert 'value="admin">Admin &#34;A&#34;</option>' in "".join(ours)


def test_template_url_for_builds_what_url_for_builds(app):
    from flask import render_template_string, url_for

    # The cache keys hold no host and no url_defaults: the app must not use them.
    assert not any(app.url_default_functions.values())
    assert not app.url_map.host_matching and not app.subdomain_matching
    app.config["TRUSTED_HOSTS"] = ["a.example", "b.example"]
    source = (
        "{{ url_for('teams.show') }}|{{ url_for('teams.audit_log', page=2) }}|"
        "{{ url_for('teams.audit_log', page=1) }}|{{ url_for('teams.audit_log', page=True) }}|"
        "{{ url_for('static', filename='portal.css') }}|{{ url_for('auth.login', _external=True) }}"
    )
    for base, root in [("http://a.example", ""), ("https://b.example", "/portal")]:
        for _ in range(2):  # built, then from the cache
            with app.test_request_context("/", base_url=base + root):
                expected = "|".join(
                    [
                        url_for("teams.show"),
                        url_for("teams.audit_log", page=2),
                        url_for("teams.audit_log", page=1),
                        url_for("teams.audit_log", page=True),
                        url_for("static", filename="portal.css"),
                        url_for("auth.login", _external=True),
                    ]
                )
                assert render_template_string(source) == expected
                assert expected.startswith(root + "/settings/teams|")
                assert expected.endswith(root + "/login")
