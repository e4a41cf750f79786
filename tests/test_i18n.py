import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask_babel import force_locale, format_datetime

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "portal" / "translations" / "da" / "LC_MESSAGES"
# Names and words that are the same in Danish and English.
SAME_IN_BOTH = {"Pro", "Practice", "Free", "Clinic Teams", "Teams", "Status", "OK", "CVR", "Person"}


def danish():
    with open(CATALOGUE / "messages.po", "rb") as handle:
        return read_po(handle)


def test_every_message_has_a_danish_translation_that_differs_from_english():
    missing, identical = [], []
    for message in danish():
        if not message.id:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        if not all(strings) or message.fuzzy:
            missing.append(ids[0])
        elif strings[0] == ids[0] and ids[0] not in SAME_IN_BOTH:
            identical.append(ids[0])
    assert missing == [], f"untranslated: {missing}"
    assert identical == [], f"same as English: {identical}"


def test_the_catalogue_covers_every_string_in_the_code(tmp_path):
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "-k",
            "lazy_ngettext:1,2",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with open(pot, "rb") as handle:
        extracted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}
    known = {m.id if isinstance(m.id, str) else m.id[0] for m in danish() if m.id}
    assert sorted(extracted - known) == []


def _pairs(catalogue):
    def key(value):
        return value if isinstance(value, str) else tuple(value)

    return {key(m.id): key(m.string) for m in catalogue if m.id}


def test_the_compiled_catalogue_is_up_to_date():
    with open(CATALOGUE / "messages.mo", "rb") as handle:
        compiled = _pairs(read_mo(handle))
    source = _pairs(danish())
    assert compiled == source, "run `make translations`"


def test_times_are_shown_in_copenhagen_in_the_users_language(ctx):
    utc_noon = datetime(2026, 7, 1, 12, 0)
    with force_locale("da"):
        assert "14.00" in format_datetime(utc_noon, "short")
    with force_locale("en"):
        assert "2:00" in format_datetime(utc_noon, "short")


def test_page_formats_follow_the_language_and_the_copenhagen_clock(ctx):
    from portal.i18n import formats, language, money

    late = datetime(2026, 7, 1, 22, 30)  # UTC; already 2 July, 00:30, in Copenhagen
    with language("da"):
        assert formats().date(late) == "2. jul. 2026"
        assert "00.30" in formats().datetime(late, "short")
        assert money(29900) == "299,00\xa0kr."
    with language("en"):  # the same request, another language: nothing cached across
        assert formats().date(late) == "Jul 2, 2026"
        assert "12:30" in formats().datetime(late, "short")
        assert money(29900) == "DKK\xa0299.00"
        assert money(-29900) == "-DKK\xa0299.00"  # a credit note


def test_a_formatted_time_is_cached_per_time_zone(ctx):
    from zoneinfo import ZoneInfo

    from portal.i18n import _format_datetime

    # Aware times in two zones compare equal; the cache must not hand one zone's text to the other.
    noon = datetime(2026, 7, 1, 12, 0)
    london = _format_datetime(noon, "short", "en", ZoneInfo("Europe/London"))
    copenhagen = _format_datetime(noon, "short", "en", ZoneInfo("Europe/Copenhagen"))
    assert "1:00" in london and "2:00" in copenhagen


@pytest.mark.parametrize("through_flask", [True, False], ids=["render_template", "jinja"])
def test_template_gettext_formats_escapes_and_translates(app, ctx, through_flask):
    """Flask's render_template binds _() to the request's catalogue (a context processor);
    a template rendered by Jinja alone looks it up on each call."""
    from flask import render_template_string

    from portal.i18n import language

    source = (
        '{{ _("Team name: %(name)s", name=n) }}|{{ _("100%% sure") }}|'
        '{{ ngettext("%(num)d member", "%(num)d members", 2) }}'
    )

    def render(**values):
        if through_flask:
            return render_template_string(source, **values)
        return app.jinja_env.from_string(source).render(**values)

    assert render(n="<b>") == "Team name: &lt;b&gt;|100% sure|2 members"
    with language("da"):
        assert render(n="Nord").startswith("Teamnavn: Nord|")


def test_danish_messages_carry_the_same_markup_as_the_english():
    # Template text is trusted as HTML, so a translation may not add, drop or change a tag.
    tag = re.compile(r"</?[a-zA-Z][^>]*>")
    changed = []
    for message in danish():
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        if message.id and sorted(tag.findall(strings[0])) != sorted(tag.findall(ids[0])):
            changed.append(ids[0])
    assert changed == []


@pytest.mark.parametrize(
    ("data", "english", "danish"),
    [
        ({"name": ""}, "This field is required.", "Dette felt skal udfyldes."),
        ({"name": "x" * 121}, "Field cannot be longer than 120 characters.", "højst 120 tegn"),
    ],
)
def test_form_library_messages_are_in_the_page_language(client, data, english, danish):
    # WTForms ships no Danish catalogue: its own messages come from the portal's.
    form = {"name": "Nina", "email": "nina@clinic.example", "password": "a sunny day in aarhus"}
    for language, expected in (("en", english), ("da", danish)):
        response = client.post(
            "/signup", data={**form, **data}, headers={"Accept-Language": language}
        )
        error = re.search(r'<p class="error" id="name-error">([^<]*)</p>', response.text)
        assert error and expected in error.group(1), (language, error and error.group(1))


def test_no_danish_sentence_ends_with_an_amount():
    # Danish amounts end in "kr.", so "… %(amount)s." would print "kr..".
    money = re.compile(r"%\((amount|before|after|total|price)\)s\.$")
    ending = [
        m.id for m in danish() if m.id and isinstance(m.string, str) and money.search(m.string)
    ]
    assert ending == []


def test_the_team_language_is_named_in_the_readers_language(client, make_user, make_team, login):
    owner = make_user(email="olga@clinic.example")
    make_team(owner)  # English, the owner's language
    login(owner)
    english = client.get("/settings/teams", headers={"Accept-Language": "en"}).text
    assert "Team language: English" in english
    client.post("/language", data={"locale": "da"})
    assert "Teamets sprog: engelsk" in client.get("/settings/teams").text
