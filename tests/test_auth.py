import re

import pytest

from portal.auth.models import User
from portal.extensions import db
from tests.conftest import PASSWORD


def link_in(body: str, path: str) -> str:
    match = re.search(r"https?://[^\s\"<]+" + re.escape(path) + r"[^\s\"<]*", body)
    assert match, f"no {path} link in: {body}"
    return match.group(0).split("localhost", 1)[1]


def signup(
    client, email="New.Person@Clinic.example ", password="a sunny day in aarhus", name="Nina"
):
    return client.post("/signup", data={"name": name, "email": email, "password": password})


def user_by_email(app, address):
    with app.app_context():
        return db.session.query(User).filter_by(email=address).one_or_none()


PRODUCTION_HASHING = {"ARGON2_PARAMS": {"time_cost": 3, "memory_cost": 65536, "parallelism": 4}}


@pytest.mark.parametrize("app_overrides", [PRODUCTION_HASHING])
def test_signup_creates_an_unverified_account_and_emails_a_link(client, app, outbox):
    response = signup(client)
    assert response.status_code == 200
    assert "Check your inbox" in response.text
    user = user_by_email(app, "new.person@clinic.example")
    assert user is not None and user.email_verified_at is None
    assert user.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4")
    [mail] = outbox("new.person@clinic.example")
    assert mail["subject"] == "Confirm your email address"
    assert "/verify/" in mail["text"] and "/verify/" in mail["html"]


def test_signup_with_a_taken_address_answers_the_same_and_warns_the_owner(
    client, app, make_user, outbox
):
    make_user(email="taken@clinic.example")
    response = signup(client, email="TAKEN@clinic.example")
    assert response.status_code == 200
    assert "Check your inbox" in response.text
    with app.app_context():
        assert db.session.query(User).count() == 1
    [mail] = outbox("taken@clinic.example")
    assert mail["subject"] == "You already have an account"


@pytest.mark.parametrize(
    ("field", "data", "message"),
    [
        ("password", {"password": "short"}, "at least 8 characters"),
        ("password", {"password": "password123"}, "too easy to guess"),
        ("email", {"email": "not-an-email"}, "Enter an email address"),
        ("name", {"name": ""}, "This field is required"),
    ],
)
def test_signup_shows_what_is_wrong_beside_the_field(client, app, field, data, message):
    form = {"name": "Nina", "email": "nina@clinic.example", "password": "a sunny day in aarhus"}
    response = client.post("/signup", data={**form, **data})
    assert response.status_code == 422
    error = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', response.text)
    assert error and message in error.group(1)
    assert f'aria-describedby="{field}-error"' in response.text or "-hint " in response.text
    with app.app_context():
        assert db.session.query(User).count() == 0


def test_verification_link_confirms_the_address_then_login_works(client, app, outbox):
    signup(client)
    unverified = client.post(
        "/login", data={"email": "new.person@clinic.example", "password": "a sunny day in aarhus"}
    )
    assert unverified.status_code == 403
    assert "Confirm your email first" in unverified.text
    link = link_in(outbox()[0]["text"], "/verify/")
    response = client.get(link)
    assert response.status_code == 303
    assert user_by_email(app, "new.person@clinic.example").email_verified_at is not None
    response = client.post(
        "/login", data={"email": "new.person@clinic.example", "password": "a sunny day in aarhus"}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/settings/account"


def test_forged_verification_link_is_410(client):
    response = client.get("/verify/not-a-real-token")
    assert response.status_code == 410
    assert "no longer valid" in response.text


def test_wrong_password_and_unknown_email_get_the_same_answer(client, make_user):
    make_user(email="anna@clinic.example")
    wrong = client.post("/login", data={"email": "anna@clinic.example", "password": "nope nope"})
    unknown = client.post(
        "/login", data={"email": "nobody@clinic.example", "password": "nope nope"}
    )
    assert wrong.status_code == unknown.status_code == 422
    assert "Invalid email or password." in wrong.text and "Invalid email or password." in (
        unknown.text
    )


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/settings/account?tab=1", "/settings/account?tab=1"),
        ("https://evil.example/steal", "/settings/account"),
        ("//evil.example/steal", "/settings/account"),
        ("/\\evil.example", "/settings/account"),
        ("javascript:alert(1)", "/settings/account"),
    ],
)
def test_login_goes_only_to_local_next_paths(client, make_user, target, expected):
    make_user(email="anna@clinic.example")
    response = client.post(
        "/login", data={"email": "anna@clinic.example", "password": PASSWORD, "next": target}
    )
    assert response.headers["Location"] == expected


def test_login_starts_a_new_session(client, make_user):
    make_user(email="anna@clinic.example")
    client.get("/login")
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    client.post("/login", data={"email": "anna@clinic.example", "password": PASSWORD})
    with client.session_transaction() as session:
        assert "planted" not in session
        assert "_user_id" in session


def test_an_old_hash_is_upgraded_at_login(app, client, make_user):
    user_id = make_user(email="anna@clinic.example")  # hashed with the cheap test parameters
    app.config["ARGON2_PARAMS"] = PRODUCTION_HASHING["ARGON2_PARAMS"]
    app.extensions.pop("password_hasher")
    client.post("/login", data={"email": "anna@clinic.example", "password": PASSWORD})
    with app.app_context():
        assert db.session.get(User, user_id).password_hash.startswith(
            "$argon2id$v=19$m=65536,t=3,p=4"
        )


def test_logout_ends_this_session_only(app, make_user):
    # Issue 15: "Log out" ends this device's session; "Sign out everywhere" ends them all
    # (tests/test_devices.py).
    make_user(email="anna@clinic.example")
    laptop, phone = app.test_client(), app.test_client()
    for device in (laptop, phone):
        device.post("/login", data={"email": "anna@clinic.example", "password": PASSWORD})
        assert device.get("/settings/account").status_code == 200
    cookie = laptop.get_cookie(app.config["SESSION_COOKIE_NAME"]).value
    response = laptop.post("/logout")
    assert response.status_code == 303
    assert '"cache", "storage"' in response.headers["Clear-Site-Data"]
    assert laptop.get("/settings/account").status_code == 302
    assert phone.get("/settings/account").status_code == 200
    # The cookie from before the logout, replayed, opens nothing: its record is gone.
    laptop.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie)
    assert laptop.get("/settings/account").status_code == 302


def test_htmx_request_after_logout_gets_401_and_a_redirect_header(client, make_user, login):
    login(make_user())
    client.post("/logout")
    response = client.get("/settings/account", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login?next=")


def test_password_change_ends_other_sessions_but_keeps_this_one(app, make_user):
    make_user(email="anna@clinic.example")
    laptop, phone = app.test_client(), app.test_client()
    for device in (laptop, phone):
        device.post("/login", data={"email": "anna@clinic.example", "password": PASSWORD})
    response = laptop.post(
        "/settings/account/password",
        data={"current_password": PASSWORD, "password": "a brand new passphrase"},
    )
    assert response.status_code == 303
    assert laptop.get("/settings/account").status_code == 200
    assert phone.get("/settings/account").status_code == 302


def test_password_change_needs_the_current_password(client, make_user, login):
    login(make_user())
    response = client.post(
        "/settings/account/password",
        data={"current_password": "wrong one", "password": "a brand new passphrase"},
    )
    assert response.status_code == 422
    assert "This is not your current password." in response.text


def test_reset_link_sets_a_new_password_once(client, app, make_user, outbox):
    make_user(email="anna@clinic.example")
    response = client.post("/password/forgot", data={"email": "Anna@clinic.example"})
    assert "If anna@clinic.example has an account" in response.text
    link = link_in(outbox("anna@clinic.example")[0]["text"], "/password/reset/")
    assert client.get(link).status_code == 200
    response = client.post(link, data={"password": "another good passphrase"})
    assert response.status_code == 303
    assert client.post(link, data={"password": "yet another passphrase"}).status_code == 410
    login = client.post(
        "/login", data={"email": "anna@clinic.example", "password": "another good passphrase"}
    )
    assert login.status_code == 303


def test_forgot_password_does_not_reveal_unknown_addresses(client, outbox):
    response = client.post("/password/forgot", data={"email": "ghost@clinic.example"})
    assert response.status_code == 200
    assert "If ghost@clinic.example has an account" in response.text
    assert outbox() == []


def test_login_is_rate_limited_per_address_and_ip(client, make_user):
    make_user(email="anna@clinic.example")
    for _ in range(10):
        assert (
            client.post(
                "/login", data={"email": "anna@clinic.example", "password": "wrong guess"}
            ).status_code
            == 422
        )
    limited = client.post("/login", data={"email": "anna@clinic.example", "password": PASSWORD})
    assert limited.status_code == 429
    assert "Too many log-in attempts for this address. Try again in 1 minute." in limited.text
    assert int(limited.headers["Retry-After"]) <= 60
    other = client.post("/login", data={"email": "other@clinic.example", "password": "x"})
    assert other.status_code == 422


def test_signup_is_rate_limited_per_ip(client, app):
    for n in range(5):
        assert signup(client, email=f"n{n}@clinic.example").status_code == 200
    response = signup(client, email="n6@clinic.example")
    assert response.status_code == 429
    assert user_by_email(app, "n6@clinic.example") is None


@pytest.mark.parametrize("app_overrides", [{"WTF_CSRF_ENABLED": True}])
def test_posts_need_a_csrf_token_and_htmx_sends_it_in_a_header(client, make_user):
    make_user(email="anna@clinic.example")
    response = client.post("/login", data={"email": "anna@clinic.example", "password": PASSWORD})
    assert response.status_code == 400
    assert "Your page expired" in response.text
    page = client.get("/login").text
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)
    response = client.post(
        "/login",
        data={"email": "anna@clinic.example", "password": PASSWORD},
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 303


def test_language_follows_the_choice_then_the_browser(client, app, make_user, login):
    assert "<h1>Log ind</h1>" in client.get("/login", headers={"Accept-Language": "da"}).text
    assert "<h1>Log in</h1>" in client.get("/login", headers={"Accept-Language": "fr"}).text
    user_id = make_user(locale="en")
    login(user_id)
    client.post("/language", data={"locale": "da", "next": "/settings/account"})
    with app.app_context():
        assert db.session.get(User, user_id).locale == "da"
    page = client.get("/settings/account", headers={"Accept-Language": "en"}).text
    assert '<html lang="da">' in page
