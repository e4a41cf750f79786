"""Signed-in devices (issue 15, part 3): server-side session records, listed on the account
page, ended one by one, all others, or everywhere; logout ends only this session; a password
change ends the others, a reset ends all."""

import hashlib
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.auth.models import User
from portal.clock import utcnow
from portal.devices import service
from portal.devices.models import UserSession
from portal.devices.useragent import describe
from portal.extensions import db
from portal.worker import cleanup
from tests.conftest import PASSWORD

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like"
    " Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
EDGE_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0.0.0 Mobile Safari/537.36"
)
HTMX = {"HX-Request": "true"}


@pytest.mark.parametrize(
    ("user_agent", "name"),
    [
        (CHROME_WINDOWS, "Chrome on Windows"),
        (SAFARI_IPHONE, "Safari on iPhone"),
        (FIREFOX_LINUX, "Firefox on Linux"),
        (EDGE_MAC, "Edge on macOS"),
        (CHROME_ANDROID, "Chrome on Android"),
        ("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) CriOS/131.0 Mobile", "Chrome on iPad"),
        ("curl/8.5.0", "Unknown browser"),
        ("", "Unknown browser"),
        ("Mozilla/5.0 (Windows NT 10.0)", "A browser on Windows"),
    ],
)
def test_the_user_agent_gets_a_short_name(ctx, user_agent, name):
    assert describe(user_agent) == name


def test_the_name_is_in_danish_on_a_danish_page(app):
    with app.test_request_context(headers={"Accept-Language": "da"}):
        assert describe(SAFARI_IPHONE) == "Safari på iPhone"
        assert describe("curl/8.5.0") == "Ukendt browser"


# -- helpers --
def device(app, user_agent=CHROME_WINDOWS, ip="192.0.2.10"):
    """A test client that is one browser on one device."""
    client = app.test_client()
    client.environ_base.update(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)
    return client


def sign_in(app, email="anna@clinic.example", **kwargs):
    client = device(app, **kwargs)
    response = client.post("/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 303, response.text
    return client


def records(app, email="anna@clinic.example"):
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        return list(
            db.session.scalars(
                select(UserSession).where(UserSession.user_id == user.id).order_by(UserSession.id)
            )
        )


def signed_in(client) -> bool:
    response = client.get("/settings/account")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def cookie_of(app, client):
    return client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value


@pytest.fixture
def anna(make_user):
    return make_user(email="anna@clinic.example", name="Anna")


# -- the record --
def test_login_makes_a_record_that_stores_only_the_hash_of_the_cookies_id(app, anna):
    laptop = sign_in(app)
    [record] = records(app)
    with laptop.session_transaction() as session:
        token = session["sid"]
    assert len(token) >= 43  # 256 random bits
    assert record.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {record.token_hash, record.user_agent, record.ip}
    assert record.user_agent == CHROME_WINDOWS and record.ip == "192.0.2.10"
    assert record.created_at == record.last_seen_at


def test_a_long_user_agent_is_cut_to_the_column(app, anna):
    sign_in(app, user_agent="Mozilla/5.0 " + "x" * 1000)
    [record] = records(app)
    assert len(record.user_agent) == service.USER_AGENT_MAX


def test_a_cookie_without_a_live_record_is_logged_out(app, anna):
    laptop = sign_in(app)
    with laptop.session_transaction() as session:
        session["sid"] = "guessed"
    assert not signed_in(laptop)
    laptop = sign_in(app)
    with laptop.session_transaction() as session:
        del session["sid"]
    assert not signed_in(laptop)


def test_last_seen_is_written_at_most_every_few_minutes(app, anna):
    laptop = sign_in(app)
    [before] = records(app)
    assert signed_in(laptop)
    [same] = records(app)
    assert same.last_seen_at == before.last_seen_at  # a request a moment later writes nothing
    with app.app_context():
        db.session.get(UserSession, before.id).last_seen_at = utcnow() - timedelta(minutes=6)
        db.session.commit()
    assert signed_in(laptop)
    [after] = records(app)
    assert utcnow() - after.last_seen_at < timedelta(minutes=1)


def test_timed_out_records_are_cleaned_up_by_the_worker_and_at_login(app, anna):
    sign_in(app)
    sign_in(app)
    idle = timedelta(seconds=app.config["SESSION_IDLE_SECONDS"]) + service.TOUCH_EVERY
    with app.app_context():
        first, second = db.session.scalars(select(UserSession).order_by(UserSession.id))
        first.last_seen_at = utcnow() - idle - timedelta(minutes=1)
        second.created_at = utcnow() - timedelta(
            seconds=app.config["PERMANENT_SESSION_LIFETIME"] + 60
        )
        db.session.commit()
        assert service.active_of(anna, now=utcnow()) == []
    with app.app_context():
        cleanup(now=utcnow())
        db.session.commit()
    assert records(app) == []
    # At login, the user's own timed-out records go too.
    sign_in(app)
    with app.app_context():
        db.session.scalars(select(UserSession)).one().last_seen_at = utcnow() - idle * 2
        db.session.commit()
    sign_in(app)
    assert len(records(app)) == 1


# -- the account page --
def test_the_account_page_lists_each_device_and_marks_this_one(app, anna):
    laptop = sign_in(app)
    sign_in(app, user_agent=SAFARI_IPHONE, ip="203.0.113.5")
    page = laptop.get("/settings/account").text
    section = page[page.index('id="devices"') :]
    assert "Signed-in devices" in section and "IP address" in section
    assert "Chrome on Windows" in section and "192.0.2.10" in section
    assert "Safari on iPhone" in section and "203.0.113.5" in section
    this_row = re.search(r'<tr id="device-\d+">.*?</tr>', section, re.S).group(0)
    assert "Chrome on Windows" in this_row and "This device" in this_row  # this device first
    assert "Sign out</button>" not in this_row
    assert section.count("This device") == 1
    assert "Sign out all other devices" in section and "Sign out everywhere" in section


def test_the_account_page_in_danish(app, make_user):
    make_user(email="anna@clinic.example", locale="da")
    laptop = sign_in(app)
    sign_in(app, user_agent=SAFARI_IPHONE)
    section = laptop.get("/settings/account").text.split('id="devices"', 1)[1]
    for words in (
        "Enheder, du er logget ind på",
        "IP-adresse",
        "Denne enhed",
        "Safari på iPhone",
        "Log alle andre enheder ud",
        "Log ud overalt",
    ):
        assert words in section, words


def test_only_live_sessions_are_listed(app, anna):
    laptop = sign_in(app)
    sign_in(app, user_agent=SAFARI_IPHONE)
    with app.app_context():
        phone = db.session.scalars(select(UserSession).order_by(UserSession.id.desc())).first()
        phone.last_seen_at = utcnow() - timedelta(days=1)
        db.session.commit()
    section = laptop.get("/settings/account").text.split('id="devices"', 1)[1]
    assert "Safari on iPhone" not in section
    assert "You are not signed in on any other device." in section


# -- signing out one device, across two clients --
def test_a_signs_out_b_and_b_is_logged_out_at_its_next_request(app, anna):
    laptop = sign_in(app)
    phone = sign_in(app, user_agent=SAFARI_IPHONE)
    phone_cookie = cookie_of(app, phone)
    phone_record = records(app)[1]
    response = laptop.post(f"/settings/account/sessions/{phone_record.id}/end")
    assert response.status_code == 303
    assert response.headers["Location"] == "/settings/account#devices"
    page = laptop.get("/settings/account").text
    assert "Safari on iPhone is signed out." in page
    assert "Safari on iPhone" not in page.split('id="devices"', 1)[1]
    assert signed_in(laptop)
    assert phone.get("/settings/account").status_code == 302
    assert phone.get("/sessions", headers=HTMX).status_code == 401
    # The phone's old cookie, replayed, does not bring the session back.
    phone.set_cookie(app.config["SESSION_COOKIE_NAME"], phone_cookie)
    response = phone.get("/settings/account")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_b_signs_out_a_with_htmx_and_the_list_and_message_come_back(app, anna):
    laptop = sign_in(app)
    phone = sign_in(app, user_agent=SAFARI_IPHONE)
    laptop_record = records(app)[0]
    response = phone.post(f"/settings/account/sessions/{laptop_record.id}/end", headers=HTMX)
    assert response.status_code == 200
    assert response.text.startswith('<section class="card" id="devices"')
    assert "Chrome on Windows" not in response.text.split("</section>", 1)[0]
    assert '"announce": "Chrome on Windows is signed out."' in response.headers["HX-Trigger"]
    assert 'id="flash" hx-swap-oob="innerHTML"' in response.text
    assert not signed_in(laptop)
    assert signed_in(phone)


def test_someone_elses_session_id_ends_nothing(app, anna, make_user):
    make_user(email="bo@clinic.example")
    mine = sign_in(app)
    bo = sign_in(app, email="bo@clinic.example")
    [bo_record] = records(app, "bo@clinic.example")
    response = mine.post(f"/settings/account/sessions/{bo_record.id}/end", headers=HTMX)
    assert response.status_code == 200
    assert "That device was already signed out." in response.headers["HX-Trigger"]
    assert signed_in(bo)
    assert [r.id for r in records(app, "bo@clinic.example")] == [bo_record.id]
    # A double click on a device already signed out gets the same answer, and no error.
    phone = sign_in(app, user_agent=SAFARI_IPHONE)
    phone_id = records(app)[-1].id
    assert mine.post(f"/settings/account/sessions/{phone_id}/end").status_code == 303
    again = mine.post(f"/settings/account/sessions/{phone_id}/end")
    assert again.status_code == 303
    assert "That device was already signed out." in mine.get("/settings/account").text
    assert not signed_in(phone)


def test_signing_out_this_devices_own_row_logs_out_here(app, anna):
    laptop = sign_in(app)
    phone = sign_in(app, user_agent=SAFARI_IPHONE)
    laptop_id = records(app)[0].id
    response = laptop.post(f"/settings/account/sessions/{laptop_id}/end", headers=HTMX)
    assert response.headers["HX-Redirect"] == "/login"
    assert not signed_in(laptop) and signed_in(phone)


def test_sign_out_all_other_devices_keeps_this_one(app, anna):
    laptop = sign_in(app)
    phone = sign_in(app, user_agent=SAFARI_IPHONE)
    tablet = sign_in(app, user_agent=FIREFOX_LINUX)
    response = laptop.post("/settings/account/sessions/end-others", headers=HTMX)
    assert response.status_code == 200
    assert "2 other devices are signed out." in response.headers["HX-Trigger"]
    assert "You are not signed in on any other device." in response.text
    assert signed_in(laptop) and not signed_in(phone) and not signed_in(tablet)
    assert len(records(app)) == 1
    response = laptop.post("/settings/account/sessions/end-others")
    assert response.status_code == 303
    assert "No other device was signed in." in laptop.get("/settings/account").text


def test_sign_out_everywhere_ends_every_session_this_one_too(app, anna):
    laptop = sign_in(app)
    phone = sign_in(app, user_agent=SAFARI_IPHONE)
    response = laptop.post("/logout/everywhere")
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert '"cache", "storage"' in response.headers["Clear-Site-Data"]
    assert "You are signed out on every device." in laptop.get("/login").text
    assert not signed_in(laptop) and not signed_in(phone)
    assert records(app) == []


def test_the_device_actions_need_a_login(client):
    for path in ("/settings/account/sessions/1/end", "/settings/account/sessions/end-others"):
        response = client.post(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.post("/logout/everywhere").status_code == 303


def test_the_device_actions_need_the_csrf_token(app, anna):
    laptop = sign_in(app)
    phone = sign_in(app, user_agent=SAFARI_IPHONE)
    app.config["WTF_CSRF_ENABLED"] = True
    phone_id = records(app)[1].id
    for path in (
        f"/settings/account/sessions/{phone_id}/end",
        "/settings/account/sessions/end-others",
        "/logout/everywhere",
    ):
        assert laptop.post(path).status_code == 400, path
    assert signed_in(phone) and signed_in(laptop)


# -- logout, password change and reset --
def test_logout_ends_only_this_session(app, anna):
    laptop = sign_in(app)
    phone = sign_in(app, user_agent=SAFARI_IPHONE)
    laptop.post("/logout")
    assert not signed_in(laptop) and signed_in(phone)
    assert [r.user_agent for r in records(app)] == [SAFARI_IPHONE]


def test_a_password_change_ends_the_others_and_keeps_this_one(app, anna):
    laptop = sign_in(app)
    phone = sign_in(app, user_agent=SAFARI_IPHONE)
    [laptop_before, _phone] = records(app)
    old_cookie = cookie_of(app, laptop)
    response = laptop.post(
        "/settings/account/password",
        data={"current_password": PASSWORD, "password": "a brand new passphrase"},
    )
    assert response.status_code == 303
    assert signed_in(laptop) and not signed_in(phone)
    [laptop_after] = records(app)
    # The same record, so "signed in" stays; a new id, so the cookie from before is worthless.
    assert laptop_after.id == laptop_before.id
    assert laptop_after.created_at == laptop_before.created_at
    assert laptop_after.token_hash != laptop_before.token_hash
    thief = device(app)
    thief.set_cookie(app.config["SESSION_COOKIE_NAME"], old_cookie)
    assert not signed_in(thief)


def test_a_password_reset_ends_every_session(app, anna, outbox):
    laptop = sign_in(app)
    phone = sign_in(app, user_agent=SAFARI_IPHONE)
    laptop.post("/password/forgot", data={"email": "anna@clinic.example"})
    [mail] = [m for m in outbox("anna@clinic.example") if "/password/reset/" in m["text"]]
    link = re.search(r"http://localhost(/password/reset/\S+)", mail["text"])[1]
    assert laptop.post(link, data={"password": "a brand new passphrase"}).status_code == 303
    assert not signed_in(laptop) and not signed_in(phone)
    assert records(app) == []


def test_end_sessions_still_ends_every_session(app, anna):
    # For callers that end an account's sessions (account deletion, a reset).
    laptop = sign_in(app)
    phone = sign_in(app, user_agent=SAFARI_IPHONE)
    from portal.auth import service as auth_service

    with app.app_context():
        assert auth_service.end_sessions(db.session.get(User, anna)) == 2
        db.session.commit()
    assert not signed_in(laptop) and not signed_in(phone)


def test_the_log_in_page_after_signing_out_keeps_the_users_language(app, make_user):
    make_user(email="anna@clinic.example", locale="da")
    laptop = sign_in(app)
    laptop.post("/logout/everywhere")
    page = laptop.get("/login").text
    assert 'lang="da"' in page and "Du er logget ud på alle enheder." in page
    laptop = sign_in(app)
    laptop.post("/logout")
    assert 'lang="da"' in laptop.get("/login").text


def test_a_session_ended_elsewhere_mid_request_makes_no_error(app, anna):
    # The request holds its session as plain values (SessionRef): touching, rotating or ending
    # a row another device deleted a moment ago changes nothing and raises nothing.
    sign_in(app)
    [record] = records(app)
    this = service.ref(record)
    with app.test_request_context():
        service.end_all(anna)
        db.session.commit()
        later = utcnow() + timedelta(minutes=10)
        assert service.touch(this, now=later) is True
        assert isinstance(service.rotate(this), str)
        service.end(this)
        db.session.commit()
    assert records(app) == []


# -- confirm it is you (ASVS 7.5.2): the password again, 15 minutes after the log-in --
def age_login(client, minutes=16):
    with client.session_transaction() as session:
        session["login_at"] -= minutes * 60


def test_after_15_minutes_signing_out_a_device_asks_for_the_password_first(app, anna):
    laptop = sign_in(app)
    phone = sign_in(app, user_agent=SAFARI_IPHONE)
    phone_id = records(app)[1].id
    age_login(laptop, minutes=14)
    assert laptop.post(f"/settings/account/sessions/{phone_id}/end").status_code == 303
    phone = sign_in(app, user_agent=SAFARI_IPHONE)
    phone_id = records(app)[1].id
    age_login(laptop, minutes=2)  # 16 minutes since the log-in
    asked = laptop.post(f"/settings/account/sessions/{phone_id}/end")
    assert asked.status_code == 200 and "<h1" in asked.text
    assert "Confirm it is you" in asked.text and 'name="confirm-password"' in asked.text
    assert f'action="/settings/account/sessions/{phone_id}/end"' in asked.text
    assert ">Sign out Safari on iPhone</button>" in asked.text
    assert signed_in(phone)
    wrong = laptop.post(
        f"/settings/account/sessions/{phone_id}/end", data={"confirm-password": "no"}
    )
    assert wrong.status_code == 422 and 'id="confirm-password-error"' in wrong.text
    assert signed_in(phone)
    right = laptop.post(
        f"/settings/account/sessions/{phone_id}/end", data={"confirm-password": PASSWORD}
    )
    assert right.status_code == 303 and not signed_in(phone)
    # Confirmed: the next 15 minutes need no password.
    tablet = sign_in(app, user_agent=FIREFOX_LINUX)
    assert laptop.post("/settings/account/sessions/end-others").status_code == 303
    assert not signed_in(tablet) and signed_in(laptop)


def test_with_htmx_the_password_form_replaces_the_device_list(app, anna):
    laptop = sign_in(app)
    phone = sign_in(app, user_agent=SAFARI_IPHONE)
    age_login(laptop)
    asked = laptop.post("/settings/account/sessions/end-others", headers=HTMX)
    assert asked.status_code == 200 and "<html" not in asked.text
    assert asked.text.startswith('<section class="card" id="devices"')
    assert 'hx-post="/settings/account/sessions/end-others"' in asked.text
    assert "Enter your password to continue." in asked.headers["HX-Trigger"]
    done = laptop.post(
        "/settings/account/sessions/end-others", data={"confirm-password": PASSWORD}, headers=HTMX
    )
    assert "1 other device is signed out." in done.headers["HX-Trigger"]
    assert not signed_in(phone) and signed_in(laptop)


def test_sign_out_everywhere_asks_for_the_password_after_15_minutes(app, anna):
    laptop = sign_in(app)
    phone = sign_in(app, user_agent=SAFARI_IPHONE)
    age_login(laptop)
    asked = laptop.post("/logout/everywhere")
    assert asked.status_code == 200 and ">Sign out everywhere</button>" in asked.text
    assert signed_in(laptop) and signed_in(phone)
    done = laptop.post("/logout/everywhere", data={"confirm-password": PASSWORD})
    assert done.status_code == 303 and not signed_in(laptop) and not signed_in(phone)


def test_wrong_passwords_to_confirm_are_limited(app, anna):
    laptop = sign_in(app)
    age_login(laptop)
    limit = int(app.config["RATELIMIT_PASSWORD_CHANGE"].split("/")[0])
    for _ in range(limit):
        wrong = laptop.post(
            "/settings/account/sessions/end-others", data={"confirm-password": "no"}
        )
        assert wrong.status_code == 422
    blocked = laptop.post(
        "/settings/account/sessions/end-others", data={"confirm-password": PASSWORD}
    )
    assert blocked.status_code == 429
