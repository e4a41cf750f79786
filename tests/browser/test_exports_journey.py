"""An admin downloads the member list and a filtered activity log as CSV files, as a data
protection officer or an accountant would ask for them; both downloads are then in the log.
In English with JavaScript, and in Danish without (the downloads are plain links and GET
forms)."""

import csv
import io
import re

import pytest
from playwright.sync_api import Page, expect

from devtools.provision import provision_subscription
from portal.audit import service as audit
from portal.auth.service import create_user
from portal.clock import utcnow
from portal.extensions import db
from portal.teams import service as teams
from portal.teams.models import Membership
from tests.browser.conftest import words
from tests.browser.test_billing_journey import PASSWORD, log_in

OWNER = "olga@syd.example"


def make_team(live, locale: str) -> None:
    """Olga owns Klinik Syd; Anna is an admin and Mads a member, whom Olga invited."""
    now = utcnow()
    with live.app.test_request_context():
        people = {
            name: create_user(
                name=name, email=email, password=PASSWORD, locale=locale, now=now, verified=True
            )
            for name, email in [
                ("Olga Owner", OWNER),
                ("Anna Admin", "anna@syd.example"),
                ("Mads Member", "mads@syd.example"),
            ]
        }
        db.session.commit()
        olga = people["Olga Owner"]
        provision_subscription(olga, plan="pro", interval="month")
        team = teams.create_team(olga, "Klinik Syd", now=now)
        for name, role in [("Anna Admin", "admin"), ("Mads Member", "member")]:
            db.session.add(
                Membership(team=team, user_id=people[name].id, role=role, created_at=now)
            )
        audit.record(team.id, "invitation.sent", actor=olga, now=now, target="mads@syd.example")
        db.session.commit()


def download(page: Page, click) -> list[dict]:
    with page.expect_download() as started:
        click()
    # The file starts with a byte-order mark, so that Excel reads it as UTF-8.
    with open(started.value.path(), encoding="utf-8-sig") as handle:
        return list(csv.DictReader(io.StringIO(handle.read())))


@pytest.mark.parametrize(
    ("lang", "js"),
    [
        pytest.param("en", True, id="en-js"),
        pytest.param(
            "da",
            False,
            id="da-nojs",
            marks=pytest.mark.browser_context_args(java_script_enabled=False),
        ),
    ],
)
def test_an_admin_exports_the_members_and_a_filtered_activity_log(
    page: Page, live, live_stripe, shot, lang: str, js: bool
):
    _ = words(lang)
    make_team(live, lang)
    page.goto(live.url + "/login")
    log_in(page, OWNER)
    page.goto(live.url + "/settings/teams")

    members = download(
        page, page.get_by_role("link", name=_("Download the member list (CSV)")).click
    )
    assert [(m["name"], m["role"], m["seat"]) for m in members] == [
        ("Olga Owner", "admin", "paid"),
        ("Anna Admin", "admin", "paid"),
        ("Mads Member", "member", "paid"),
    ]
    assert members[2]["email"] == "mads@syd.example" and members[2]["joined"]

    page.get_by_role("link", name=_("All activity and exports")).click()
    page.get_by_label(_("Person")).select_option("Olga Owner")
    page.get_by_label(_("Action")).select_option(label=_("exported the member list"))
    shot(f"activity-export-{lang}")
    activity = download(page, page.get_by_role("button", name=_("Download CSV")).click)
    assert [(a["who"], a["action"], a["target"]) for a in activity] == [
        ("Olga Owner", "export.members", "3 rows")
    ]

    page.reload()
    log = page.locator("ol.audit")
    expect(log).to_contain_text(_("exported the member list"))
    expect(log).to_contain_text(_("exported the activity log"))

    # The same filters narrow the list on the page (a plain GET form, with or without JS).
    page.get_by_label(_("Action")).select_option(label=_("exported the activity log"))
    page.get_by_role("button", name=_("Show"), exact=True).click()
    expect(page).to_have_url(re.compile(r"action=export\.activity"))
    expect(page.get_by_label(_("Action"))).to_have_value("export.activity")
    expect(log).to_contain_text(_("exported the activity log"))
    expect(log).not_to_contain_text(_("exported the member list"))
    page.get_by_role("link", name=_("Show all activity")).click()
    expect(log).to_contain_text(_("exported the member list"))
