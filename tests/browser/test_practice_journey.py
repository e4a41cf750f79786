"""Practice collaboration in the browser: a team template, a session started from it, shared
with the team, viewed by an assistant, and access gone when the clinician leaves the team.

Each person has their own browser context. The journey runs in English and in Danish (the users'
locale; the login page follows the browser's language); a shorter run without JavaScript checks
that search and sharing work as plain forms.
"""

import re
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Browser, Page, expect

from devtools.provision import provision_subscription
from portal.auth.service import create_user
from portal.clock import utcnow
from portal.extensions import db
from portal.team_templates.service import save_template
from portal.teams.models import Membership
from portal.teams.service import create_team
from tests.browser.conftest import SHOTS

PASSWORD = "morning coffee at the clinic"
TEAM = "Praksis Syd"
OWNER, MEMBER, ASSISTANT = "Olga Owner", "Mette Madsen", "Asta Assistent"

# What each run types and reads, in the users' language (Danish from messages.po).
TEXT = {
    "en": {
        "browser_locale": "en-GB",
        "email": "Email",
        "password": "Password",
        "log_in": "Log in",
        "settings": "Settings",
        "templates": "Templates",
        "sessions": "Sessions",
        "teams": "Teams",
        "new_team_template": "New team template",
        "title": "Title",
        "specialty": "Specialty (optional)",
        "body": "Template",
        "save_team_template": "Save team template",
        "template_saved": "Template {title} saved.",
        "search_label": "Search team templates",
        "search": "Search",
        "one_found": "1 template found",
        "start_session": "Start a session from this template",
        "session_started": "Session {title} started.",
        "note": "Note",
        "save_session": "Save session",
        "session_saved": "Session saved.",
        "my_session": "My session",
        "share": "Share with the team",
        "shared_badge": "Shared with the team",
        "shared_flash": "{title} is shared with your team (view only).",
        "shared_with_me": "Shared with me",
        "nobody_shared": "No colleague has shared a session with you yet.",
        "shared_by": "Shared by {name} (view only)",
        "leave": "Leave team",
        "leave_heading": "Leave {team}?",
        "left": "You left {team} and are back on Free.",
        "not_found": "Page not found",
        "activity": "Activity",
        "viewed": "viewed the shared session {target}",
        # the template the admin writes, and one more the search must filter out
        "template": "Knee follow-up",
        "specialty_value": "Orthopaedics",
        "sections": ["Reason for visit:", "Findings:", "Range of motion:", "Plan:"],
        "query": "knee",
        "other_template": "Asthma review",
    },
    "da": {
        "browser_locale": "da-DK",
        "email": "E-mail",
        "password": "Adgangskode",
        "log_in": "Log ind",
        "settings": "Indstillinger",
        "templates": "Skabeloner",
        "sessions": "Konsultationer",
        "teams": "Teams",
        "new_team_template": "Ny teamskabelon",
        "title": "Titel",
        "specialty": "Speciale (valgfrit)",
        "body": "Skabelon",
        "save_team_template": "Gem teamskabelon",
        "template_saved": "Skabelonen {title} er gemt.",
        "search_label": "Søg i teamskabeloner",
        "search": "Søg",
        "one_found": "1 skabelon fundet",
        "start_session": "Start en konsultation fra denne skabelon",
        "session_started": "Konsultationen {title} er startet.",
        "note": "Notat",
        "save_session": "Gem konsultation",
        "session_saved": "Konsultationen er gemt.",
        "my_session": "Min konsultation",
        "share": "Del med teamet",
        "shared_badge": "Delt med teamet",
        "shared_flash": "{title} deles nu med dit team (kun læseadgang).",
        "shared_with_me": "Delt med mig",
        "nobody_shared": "Ingen kolleger har delt en konsultation med dig endnu.",
        "shared_by": "Delt af {name} (kun læseadgang)",
        "leave": "Forlad team",
        "leave_heading": "Forlad {team}?",
        "left": "Du har forladt {team} og er tilbage på Free.",
        "not_found": "Siden blev ikke fundet",
        "activity": "Aktivitet",
        "viewed": "så den delte konsultation {target}",
        "template": "Knæopfølgning",
        "specialty_value": "Ortopædi",
        "sections": ["Årsag til besøg:", "Fund:", "Bevægelighed:", "Plan:"],
        "query": "knæ",
        "other_template": "Astmakontrol",
    },
}


def email_of(name: str) -> str:
    return name.split()[0].lower() + "@praksis-syd.example"


def make_team(live, lang: str) -> None:
    """Owner (Practice), a member and an assistant; sharing on; one team template already."""
    t = TEXT[lang]
    with live.app.test_request_context():
        users = {
            name: create_user(
                name=name,
                email=email_of(name),
                password=PASSWORD,
                locale=lang,
                now=utcnow(),
                verified=True,
            )
            for name in (OWNER, MEMBER, ASSISTANT)
        }
        db.session.commit()
        owner = users[OWNER]
        provision_subscription(owner, plan="practice", interval="month")
        team = create_team(owner, TEAM, now=utcnow())
        for name, role in ((MEMBER, "member"), (ASSISTANT, "assistant")):
            db.session.add(Membership(team=team, user=users[name], role=role, created_at=utcnow()))
        team.sharing_enabled = True
        db.session.flush()
        owner_membership = db.session.scalar(
            db.select(Membership).filter_by(team_id=team.id, user_id=owner.id)
        )
        save_template(
            owner,
            owner_membership,
            fields={"title": t["other_template"], "specialty": "", "body": "Peak flow:\n"},
            for_team=True,
            now=utcnow(),
        )
        db.session.commit()


def snap(page: Page, request, name: str) -> None:
    """Like the `shot` fixture, for the pages of the other people's browser contexts."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{request.node.name}-{name}.png"), full_page=True)


def log_in(page: Page, live, t: dict, name: str) -> None:
    page.goto(live.url + "/login")
    page.get_by_label(t["email"], exact=True).fill(email_of(name))
    page.get_by_label(t["password"], exact=True).fill(PASSWORD)
    page.get_by_role("button", name=t["log_in"], exact=True).click()
    expect(page).to_have_url(re.compile(r"/settings/account$"))
    expect(page.locator("html")).to_have_attribute("lang", t["browser_locale"][:2])


def open_menu(page: Page, t: dict, item: str, heading: str | None = None) -> None:
    """Follow a link of the left-hand settings menu."""
    menu = page.get_by_role("navigation", name=t["settings"], exact=True)
    menu.get_by_role("link", name=t[item], exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(heading or t[item])


def create_team_template(page: Page, t: dict) -> None:
    open_menu(page, t, "templates")
    new = page.locator("details").filter(has=page.get_by_text(t["new_team_template"], exact=True))
    new.get_by_text(t["new_team_template"], exact=True).click()  # the <summary> opens it
    new.get_by_label(t["title"], exact=True).fill(t["template"])
    new.get_by_label(t["specialty"], exact=True).fill(t["specialty_value"])
    new.get_by_label(t["body"], exact=True).fill("\n".join(t["sections"]))
    new.get_by_role("button", name=t["save_team_template"]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(t["template"])
    expect(page.locator("#flash")).to_contain_text(t["template_saved"].format(title=t["template"]))


def team_list(page: Page):
    return page.locator("#team-templates")


def start_and_save_session(page: Page, t: dict) -> str:
    """From the open template: start a session, save it; returns the session's URL."""
    page.get_by_role("button", name=t["start_session"]).click()
    expect(page).to_have_url(re.compile(r"/sessions/\d+/edit$"))
    expect(page.locator("#flash")).to_contain_text(t["session_started"].format(title=t["template"]))
    expect(page.get_by_label(t["title"], exact=True)).to_have_value(t["template"])
    expect(page.get_by_label(t["note"], exact=True)).to_have_value("\n".join(t["sections"]))
    page.get_by_role("button", name=t["save_session"]).click()
    expect(page).to_have_url(re.compile(r"/sessions/\d+$"))
    expect(page.locator("#flash")).to_contain_text(t["session_saved"])
    expect(page.locator("main p.hint")).to_contain_text(t["my_session"])
    return page.url


def session_row(page: Page, t: dict):
    return page.locator("#my-sessions tbody tr").filter(has_text=t["template"])


def shared_with_me(page: Page, t: dict):
    return page.get_by_role("region", name=t["shared_with_me"], exact=True)


def assistant_opens_shared_session(page: Page, t: dict) -> None:
    open_menu(page, t, "sessions")
    shared = shared_with_me(page, t)
    expect(shared).to_contain_text(MEMBER)
    shared.get_by_role("link", name=t["template"], exact=True).click()
    expect(page).to_have_url(re.compile(r"/sessions/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(t["template"])
    expect(page.locator("main p.hint")).to_contain_text(t["shared_by"].format(name=MEMBER))
    note = page.locator("#session-note")
    for section in t["sections"]:
        expect(note).to_contain_text(section)
    # View only: nothing to change.
    expect(page.locator(".actions")).to_have_count(0)


@pytest.mark.parametrize(
    "lang",
    [
        pytest.param(lang, marks=pytest.mark.browser_context_args(locale=t["browser_locale"]))
        for lang, t in TEXT.items()
    ],
)
def test_team_template_to_shared_session_and_back(
    page: Page, browser: Browser, live, live_stripe, shot, request, lang: str
):
    t = TEXT[lang]
    make_team(live, lang)
    contexts = []

    def new_page():
        context = browser.new_context(locale=t["browser_locale"])
        contexts.append(context)
        return context.new_page()

    try:
        # 2. The admin writes a team template.
        log_in(page, live, t, OWNER)
        create_team_template(page, t)
        expect(page.locator("#template-body")).to_have_text("\n".join(t["sections"]))

        # 3. The member finds it by searching as they type, starts a session from it, shares it.
        member = new_page()
        log_in(member, live, t, MEMBER)
        open_menu(member, t, "templates")
        expect(team_list(member).get_by_role("link")).to_have_count(2)
        with member.expect_response(
            lambda r: parse_qs(urlparse(r.url).query).get("q") == [t["query"]]
        ) as searched:
            member.get_by_label(t["search_label"]).press_sequentially(t["query"])
        assert searched.value.request.headers.get("hx-request") == "true"
        assert searched.value.status == 200
        expect(team_list(member).get_by_role("link")).to_have_text([t["template"]])
        expect(team_list(member).get_by_role("status")).to_have_text(t["one_found"])
        expect(member).to_have_url(re.compile(r"/templates$"))  # swapped in place
        snap(member, request, "member-templates-search")
        team_list(member).get_by_role("link", name=t["template"]).click()
        expect(member.get_by_role("heading", level=1)).to_have_text(t["template"])
        session_url = start_and_save_session(member, t)

        open_menu(member, t, "sessions")
        row = session_row(member, t)
        with member.expect_response(lambda r: r.request.method == "POST") as posted:
            row.get_by_role("button", name=t["share"]).click()
        assert posted.value.request.headers.get("hx-request") == "true"
        assert posted.value.status == 200
        expect(row).to_contain_text(t["shared_badge"])
        expect(row.get_by_role("button", name=t["share"])).to_have_count(0)
        expect(member).to_have_url(re.compile(r"/sessions$"))
        snap(member, request, "member-sessions-shared")

        # 4. The assistant finds it under "Shared with me" and reads it.
        assistant = new_page()
        log_in(assistant, live, t, ASSISTANT)
        assistant_opens_shared_session(assistant, t)
        assert assistant.url == session_url
        snap(assistant, request, "assistant-session-view")

        # 5. The member leaves the team.
        open_menu(member, t, "teams", heading=TEAM)
        member.get_by_role("link", name=t["leave"], exact=True).click()
        expect(member.get_by_role("heading", level=1)).to_have_text(
            t["leave_heading"].format(team=TEAM)
        )
        member.get_by_role("button", name=t["leave"], exact=True).click()
        expect(member.locator("#flash")).to_contain_text(t["left"].format(team=TEAM))
        open_menu(member, t, "sessions")
        snap(member, request, "member-sessions-after-leave")

        # 6. The assistant no longer sees the session, not even by its address.
        open_menu(assistant, t, "sessions")
        shared = shared_with_me(assistant, t)
        expect(shared).to_contain_text(t["nobody_shared"])
        expect(shared.get_by_role("link")).to_have_count(0)
        snap(assistant, request, "assistant-sessions-after-leave")
        response = assistant.goto(session_url)
        assert response.status == 404
        expect(assistant.get_by_role("heading", level=1)).to_have_text(t["not_found"])
        expect(assistant.get_by_text(t["template"])).to_have_count(0)
        snap(assistant, request, "assistant-old-link-404")

        # 7. The admin's activity log says the assistant viewed it.
        open_menu(page, t, "teams", heading=TEAM)
        viewed = (
            page.get_by_role("region", name=t["activity"], exact=True)
            .get_by_role("listitem")
            .filter(has_text=t["viewed"].format(target=f"{MEMBER}: {t['template']}"))
        )
        expect(viewed).to_have_count(1)
        expect(viewed.locator("strong")).to_have_text(ASSISTANT)
        shot("admin-activity")
    finally:
        for context in contexts:
            context.close()


@pytest.mark.browser_context_args(java_script_enabled=False)
def test_without_javascript_search_and_sharing_are_plain_forms(
    page: Page, browser: Browser, live, live_stripe, shot, request
):
    t = TEXT["en"]
    make_team(live, "en")
    contexts = []

    def new_page():
        context = browser.new_context(java_script_enabled=False)
        contexts.append(context)
        return context.new_page()

    try:
        log_in(page, live, t, OWNER)
        create_team_template(page, t)

        # The search is a GET form: the whole page comes back with ?q=.
        member = new_page()
        log_in(member, live, t, MEMBER)
        open_menu(member, t, "templates")
        member.get_by_label(t["search_label"]).fill(t["query"])
        with member.expect_navigation() as navigation:
            member.get_by_role("button", name=t["search"], exact=True).click()
        assert navigation.value.status == 200
        assert parse_qs(urlparse(member.url).query) == {"q": [t["query"]]}
        expect(member.get_by_label(t["search_label"])).to_have_value(t["query"])
        expect(team_list(member).get_by_role("link")).to_have_text([t["template"]])
        snap(member, request, "member-templates-search")
        team_list(member).get_by_role("link", name=t["template"]).click()
        session_url = start_and_save_session(member, t)

        # Sharing posts the form and comes back to Sessions (303) with a message.
        open_menu(member, t, "sessions")
        with member.expect_navigation() as navigation:
            session_row(member, t).get_by_role("button", name=t["share"]).click()
        response = navigation.value
        hop = response.request.redirected_from
        assert hop is not None and hop.method == "POST" and hop.response().status == 303
        assert response.url.endswith("/sessions") and response.status == 200
        expect(member.locator("#flash")).to_contain_text(
            t["shared_flash"].format(title=t["template"])
        )
        expect(session_row(member, t)).to_contain_text(t["shared_badge"])
        snap(member, request, "member-sessions-shared")

        assistant = new_page()
        log_in(assistant, live, t, ASSISTANT)
        assistant_opens_shared_session(assistant, t)
        assert assistant.url == session_url
    finally:
        for context in contexts:
            context.close()
