"""Plan guidance, the calculator, contact sales, affiliate links."""

import csv
import io
import re

import pytest

from portal.auth.models import User
from portal.billing.service import period_total, tier_prices
from portal.clock import utcnow
from portal.extensions import db
from portal.i18n import money
from portal.referrals import service as referrals
from portal.referrals.models import Referral
from portal.sales.models import ContactLead

HX = {"HX-Request": "true"}
LEAD = {
    "name": "Signe Storm",
    "email": "Signe@StorKlinik.example",
    "clinic": "Stor Klinik",
    "clinicians": "24",
    "country": "Danmark",
    "message": "We are 24 GPs.",
}


def text(html: str) -> str:
    return " ".join(html.replace("\xa0", " ").split())


def test_plans_page_shows_the_four_paths_and_is_in_the_menu(client):
    page = client.get("/plans").text
    for path in ("path-collaborate", "path-billing", "path-large", "path-individual"):
        assert f'id="{path}"' in page
    assert 'href="/contact-sales"' in page
    assert '<a href="/plans">Plans</a>' in client.get("/login").text


def test_prices_come_from_the_one_tier_table(client, ctx):
    page = text(client.get("/plans").text)
    for plan in ("pro", "practice"):
        for interval in ("month", "year"):
            for _up_to, amount in tier_prices(plan, interval):
                assert text(money(amount)) in page


def test_the_calculator_answers_as_you_type_and_as_a_plain_form(client, ctx):
    partial = client.get("/plans?clinicians=12&assistants=2", headers=HX)
    assert partial.text.lstrip().startswith('<div id="estimate"') and "<html" not in partial.text
    practice = re.search(r'id="estimate-practice">(.*?)</tr>', partial.text, re.S).group(1)
    pro = re.search(r'id="estimate-pro">(.*?)</tr>', partial.text, re.S).group(1)
    assert text(money(period_total("practice", "month", 12))) in text(practice)
    assert text(money(period_total("practice", "year", 12))) in text(practice)
    assert text(money(period_total("pro", "month", 14))) in text(pro)  # assistants pay on Pro
    full = client.get("/plans?clinicians=12&assistants=2").text
    assert "<html" in full and text(money(period_total("practice", "month", 12))) in text(full)
    for odd in ("clinicians=abc", "clinicians=-4", "clinicians=99999999"):
        assert client.get(f"/plans?{odd}").status_code == 200


def test_teams_page_without_a_team_points_to_plans(client, make_user, login):
    login(make_user())
    assert 'href="/plans"' in client.get("/settings/teams").text


def test_a_lead_is_stored_and_emailed_to_sales(client, app, outbox):
    response = client.post("/contact-sales", data=LEAD)
    assert response.status_code == 200 and "Thank you, Signe Storm" in response.text
    with app.app_context():
        lead = db.session.query(ContactLead).one()
        assert (lead.email, lead.clinicians) == ("signe@storklinik.example", 24)
    [mail] = outbox(app.config["SALES_EMAIL"])
    assert mail["subject"] == "New lead: Stor Klinik (24 clinicians)"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("clinicians", "many", "Enter a number"),
        ("clinicians", "0", "Enter a number from 1 upwards."),
        ("email", "not-an-email", "Enter an email address"),
        ("clinic", "", "This field is required"),
    ],
)
def test_contact_form_shows_what_is_wrong_beside_the_field(client, app, field, value, message):
    response = client.post("/contact-sales", data={**LEAD, field: value})
    assert response.status_code == 422
    error = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', response.text)
    assert error and message in error.group(1)
    with app.app_context():
        assert db.session.query(ContactLead).count() == 0


def test_contact_form_is_rate_limited(client, app):
    for _ in range(5):
        assert client.post("/contact-sales", data=LEAD).status_code == 200
    assert client.post("/contact-sales", data=LEAD).status_code == 429
    with app.app_context():
        assert db.session.query(ContactLead).count() == 5


def test_sales_lists_the_leads_as_text_and_csv(client, app):
    client.post("/contact-sales", data=LEAD)
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["sales", "leads"])
    assert "Stor Klinik (24 clinicians, Danmark)" in listed.output and "1 lead(s)" in listed.output
    rows = list(csv.DictReader(io.StringIO(runner.invoke(args=["sales", "leads", "--csv"]).output)))
    assert rows[0]["clinic"] == "Stor Klinik" and rows[0]["clinicians"] == "24"


def test_large_teams_are_sent_to_the_contact_form(client, make_user, make_team, login):
    owner = make_user()
    make_team(owner, members=[(make_user(), "member") for _ in range(9)])
    login(owner)
    assert 'href="/contact-sales"' in client.get("/settings/teams").text


def sign_up_karl(client, code):
    client.post(
        "/signup",
        data={
            "name": "Karl",
            "email": "karl@clinic.example",
            "password": "a sunny day in aarhus",
            "ref": code,
        },
    )


def paying_user(app, make_user, make_team):
    user_id = make_user(email="pro@clinic.example")
    make_team(user_id)
    with app.app_context():
        return user_id, db.session.get(User, user_id).referral_code


def test_a_paying_user_shares_a_link_and_sees_who_signed_up(
    client, app, make_user, make_team, login
):
    user_id, code = paying_user(app, make_user, make_team)
    login(user_id)
    page = client.get("/settings/account").text
    assert f"/signup?ref={code}" in page and "Copy link" in page
    client.post("/logout")
    signup_page = client.get(f"/signup?ref={code}").text
    assert f'value="{code}"' in signup_page
    sign_up_karl(client, code)
    with app.app_context():
        referral = db.session.query(Referral).one()
        assert referral.referrer_id == user_id
    login(user_id)
    table = re.search(r'id="referrals">(.*?)</table>', client.get("/settings/account").text, re.S)
    assert "Karl" in table.group(1) and ">No<" in table.group(1)


def test_unknown_and_unpaid_codes_are_ignored_and_nobody_is_referred_twice(
    client, app, make_user, make_team
):
    free = make_user(email="free@clinic.example")
    with app.app_context():
        free_code = db.session.get(User, free).referral_code
    for code in ("no-such-code", free_code, ""):
        email = f"x{abs(hash(code)) % 1000}@clinic.example"
        response = client.post(
            "/signup",
            data={"name": "X", "email": email, "password": "a sunny day in aarhus", "ref": code},
        )
        assert response.status_code == 200
    with app.app_context():
        assert db.session.query(Referral).count() == 0
    user_id, code = paying_user(app, make_user, make_team)
    with app.test_request_context():
        newcomer = db.session.get(User, make_user(email="new@clinic.example"))
        referrer = db.session.get(User, user_id)
        assert referrals.record_signup(newcomer, code, now=utcnow()) is not None
        db.session.commit()
        assert referrals.record_signup(newcomer, code, now=utcnow()) is None  # not twice
        assert referrals.record_signup(referrer, code, now=utcnow()) is None  # not oneself
        db.session.commit()
        assert db.session.query(Referral).count() == 1


def test_a_referral_shows_as_paying_once_the_colleague_subscribes(
    client, app, make_user, make_team, login, stripe_api
):
    from devtools.provision import provision_subscription

    user_id, code = paying_user(app, make_user, make_team)
    sign_up_karl(client, code)
    with app.test_request_context():
        karl = db.session.query(User).filter_by(email="karl@clinic.example").one()
        provision_subscription(karl, plan="pro", interval="month")
        db.session.commit()
    login(user_id)
    table = re.search(r'id="referrals">(.*?)</table>', client.get("/settings/account").text, re.S)
    assert ">Yes<" in table.group(1)
