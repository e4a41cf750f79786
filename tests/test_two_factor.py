"""Two-step sign-in (issue 15, part 1): TOTP set-up, codes used once, recovery codes, turning
it off, the log-in step, attempt limits, and the secret encrypted at rest."""

import re
from datetime import timedelta
from urllib.parse import unquote

import pyotp
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from portal import create_app
from portal.auth.models import User
from portal.clock import utcnow
from portal.config import ConfigError
from portal.exceptions import ConflictError
from portal.extensions import db
from portal.twofa import service
from portal.twofa.models import RecoveryCode, TwoFactor
from tests.conftest import PASSWORD, app_config
from tests.test_app import PRODUCTION

HX = {"HX-Request": "true"}


def code_at(secret: str, moment) -> str:
    return pyotp.TOTP(secret).at(moment)


def enable(app, user_id, now=None):
    """Set up and confirm two-step sign-in; returns (secret, recovery codes)."""
    now = now or utcnow()
    with app.test_request_context():
        user = db.session.get(User, user_id)
        secret = service.begin_setup(user, now=now)
        codes = service.confirm_setup(user, code_at(secret, now), now=now)
        db.session.commit()
    return secret, codes


def forget_last_step(app, user_id):
    """Let the next code in this 30 seconds count (tests that log in twice in one step)."""
    with app.app_context():
        db.session.get(TwoFactor, user_id).last_used_step = None
        db.session.commit()


# -- the service --
def test_setup_needs_a_first_code_and_gives_ten_recovery_codes(app, ctx, make_user, outbox):
    user = db.session.get(User, make_user())
    now = utcnow()
    secret = service.begin_setup(user, now=now)
    # the same secret until confirmed, for the session that was shown it
    assert service.begin_setup(user, now=now, shown=service.fingerprint(secret)) == secret
    assert not service.is_enabled(user)
    with pytest.raises(service.WrongCodeError):
        service.confirm_setup(
            user, "000000" if code_at(secret, now) != "000000" else "111111", now=now
        )
    assert not service.is_enabled(user)
    codes = service.confirm_setup(user, code_at(secret, now), now=now)
    db.session.commit()
    assert service.is_enabled(user)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c) for c in codes)
    assert service.recovery_codes_left(user) == 10
    [mail] = outbox(user.email)
    assert mail["subject"] == "Two-step sign-in was turned on"
    assert "If this was not you" in mail["text"]
    with pytest.raises(ConflictError):
        service.begin_setup(user, now=now)


def test_a_code_works_once_and_an_older_one_is_never_replayed(app, ctx, make_user):
    user_id = make_user()
    now = utcnow()
    secret, _codes = enable(app, user_id, now - timedelta(minutes=5))
    user = db.session.get(User, user_id)
    current = code_at(secret, now)
    assert service.verify(user, current, now=now)
    assert not service.verify(user, current, now=now)  # reuse in its window
    assert not service.verify(user, current, now=now + timedelta(seconds=20))
    previous = code_at(secret, now - timedelta(seconds=30))
    assert not service.verify(user, previous, now=now)  # replay of an earlier step
    following = code_at(secret, now + timedelta(seconds=30))
    assert service.verify(user, following, now=now + timedelta(seconds=30))


def test_one_step_of_clock_drift_either_side_is_accepted_two_are_not(app, ctx, make_user):
    user_id = make_user()
    now = utcnow()
    secret, _codes = enable(app, user_id, now - timedelta(minutes=5))
    user = db.session.get(User, user_id)
    assert not service.verify(user, code_at(secret, now + timedelta(seconds=61)), now=now)
    assert service.verify(user, code_at(secret, now - timedelta(seconds=30)), now=now)


def test_a_wrong_code_is_refused(app, ctx, make_user):
    user_id = make_user()
    secret, _codes = enable(app, user_id)
    user = db.session.get(User, user_id)
    later = utcnow() + timedelta(minutes=2)
    right = code_at(secret, later)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for attempt in (wrong, "12345", "abcdef", "", "1234567"):
        assert not service.verify(user, attempt, now=later)
    assert service.verify(user, f" {right[:3]} {right[3:]} ", now=later)  # spaces are fine


def test_a_recovery_code_works_once(app, ctx, make_user):
    user_id = make_user()
    _secret, codes = enable(app, user_id)
    user = db.session.get(User, user_id)
    now = utcnow()
    assert service.check(user, codes[0].upper().replace("-", " "), now=now) == "recovery"
    assert not service.verify(user, codes[0], now=now)
    assert service.recovery_codes_left(user) == 9
    assert service.verify(user, codes[1], now=now)
    assert not service.verify(user, "abcde-fghjk", now=now)


def test_recovery_codes_are_stored_hashed_with_their_own_salt(app, ctx, make_user):
    user_id = make_user()
    _secret, codes = enable(app, user_id)
    stored = [r.code_hash for r in db.session.query(RecoveryCode).filter_by(user_id=user_id)]
    assert len(stored) == 10
    salts = {h.split("$")[2] for h in stored}
    assert len(salts) == 10
    for code in codes:
        assert not any(code.replace("-", "") in h or code in h for h in stored)


def test_new_recovery_codes_take_a_code_and_replace_the_old_ones(app, ctx, make_user):
    user_id = make_user()
    secret, old = enable(app, user_id)
    user = db.session.get(User, user_id)
    later = utcnow() + timedelta(minutes=2)
    with pytest.raises(service.WrongCodeError):
        service.regenerate_recovery_codes(user, "000000", now=later)
    new = service.regenerate_recovery_codes(user, code_at(secret, later), now=later)
    assert len(new) == 10 and not set(new) & set(old)
    assert not service.verify(user, old[0], now=later)
    assert service.verify(user, new[0], now=later)


def test_turning_off_takes_the_password_and_a_code(app, ctx, make_user, outbox):
    user_id = make_user()
    secret, codes = enable(app, user_id)
    user = db.session.get(User, user_id)
    later = utcnow() + timedelta(minutes=2)
    with pytest.raises(service.WrongPasswordError):
        service.disable(user, "not the password", code_at(secret, later), now=later)
    assert service.is_enabled(user)
    with pytest.raises(service.WrongCodeError):
        service.disable(user, PASSWORD, "000000", now=later)
    assert service.is_enabled(user)
    service.disable(user, PASSWORD, codes[0], now=later)
    db.session.commit()
    assert not service.is_enabled(user)
    assert db.session.query(RecoveryCode).filter_by(user_id=user_id).count() == 0
    assert outbox(user.email)[-1]["subject"] == "Two-step sign-in was turned off"


def test_the_secret_is_encrypted_at_rest(app, ctx, make_user):
    user_id = make_user()
    secret, _codes = enable(app, user_id)
    stored = db.session.execute(
        text("SELECT secret_encrypted FROM two_factor WHERE user_id = :id"), {"id": user_id}
    ).scalar_one()
    assert secret not in stored and secret.lower() not in stored
    assert stored.startswith("gAAAA")  # a Fernet token
    key = app.config["TOTP_ENCRYPTION_KEYS"][0]
    assert Fernet(key).decrypt(stored.encode()).decode() == secret


def test_rotating_the_key_re_encrypts_every_secret(app, make_user, database_url, local_stripe):
    user_id = make_user()
    secret, _codes = enable(app, user_id)
    old_key = app.config["TOTP_ENCRYPTION_KEYS"][0]
    new_key = Fernet.generate_key().decode()
    both = create_app(
        app_config(database_url, local_stripe, TOTP_ENCRYPTION_KEYS=f"{new_key}, {old_key}")
    )
    result = both.test_cli_runner().invoke(args=["two-factor", "rotate-key"])
    assert result.exit_code == 0, result.output
    assert "1 secret(s) re-encrypted" in result.output
    only_new = create_app(app_config(database_url, local_stripe, TOTP_ENCRYPTION_KEYS=new_key))
    with only_new.test_request_context():
        record = db.session.get(TwoFactor, user_id)
        assert Fernet(new_key).decrypt(record.secret_encrypted.encode()).decode() == secret
        later = utcnow() + timedelta(minutes=2)
        assert service.verify(db.session.get(User, user_id), code_at(secret, later), now=later)
        db.session.rollback()
        db.engine.dispose()
    unknown = create_app(
        app_config(database_url, local_stripe, TOTP_ENCRYPTION_KEYS=Fernet.generate_key().decode())
    )
    refused = unknown.test_cli_runner().invoke(args=["two-factor", "rotate-key"])
    assert refused.exit_code == 1 and "nothing was changed" in refused.output
    for other in (both, unknown):
        with other.app_context():
            db.engine.dispose()


def test_new_key_prints_a_usable_fernet_key(app):
    result = app.test_cli_runner().invoke(args=["two-factor", "new-key"])
    assert result.exit_code == 0
    Fernet(result.output.strip())


def test_production_refuses_to_start_without_a_valid_encryption_key(monkeypatch):
    monkeypatch.delenv("FLASK_PORTAL_DEV", raising=False)
    monkeypatch.delenv("FLASK_TOTP_ENCRYPTION_KEYS", raising=False)
    with pytest.raises(ConfigError, match="TOTP_ENCRYPTION_KEYS"):
        create_app({**PRODUCTION, "TOTP_ENCRYPTION_KEYS": None})
    with pytest.raises(ConfigError, match="not a Fernet key"):
        create_app({**PRODUCTION, "TOTP_ENCRYPTION_KEYS": "too-short"})
    two = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"
    assert (
        len(create_app({**PRODUCTION, "TOTP_ENCRYPTION_KEYS": two}).config["TOTP_ENCRYPTION_KEYS"])
        == 2
    )


def test_development_derives_a_key_from_the_secret_key():
    config = {"PORTAL_DEV": True, "SQLALCHEMY_DATABASE_URI": "sqlite://"}
    one = create_app({**config, "SECRET_KEY": "a"}).config["TOTP_ENCRYPTION_KEYS"]
    again = create_app({**config, "SECRET_KEY": "a"}).config["TOTP_ENCRYPTION_KEYS"]
    other = create_app({**config, "SECRET_KEY": "b"}).config["TOTP_ENCRYPTION_KEYS"]
    assert one == again != other
    Fernet(one[0])


# -- the log-in step --
def secret_of(app, user_id) -> str:
    with app.app_context():
        return service.decrypt(db.session.get(TwoFactor, user_id).secret_encrypted)


def password_step(client, app, user_id, **extra):
    with app.app_context():
        address = db.session.get(User, user_id).email
    return client.post("/login", data={"email": address, "password": PASSWORD, **extra})


def test_login_asks_for_a_code_after_the_password_and_is_not_a_login_until_then(
    app, client, make_user
):
    user_id = make_user()
    enable(app, user_id)
    forget_last_step(app, user_id)
    response = password_step(client, app, user_id, next="/settings/teams")
    assert response.status_code == 303
    assert response.location == "/login/2fa?next=/settings/teams"
    with client.session_transaction() as session:
        assert set(session["two_factor_pending"]) == {"user_id", "at"}
        assert "_user_id" not in session
    assert client.get("/settings/account").status_code == 302  # not logged in
    page = client.get(response.location)
    assert page.status_code == 200 and "Enter your code" in page.text
    wrong = client.post("/login/2fa", data={"code": "000000", "next": "/settings/teams"})
    assert wrong.status_code == 422
    assert 'id="code-error"' in wrong.text and "not right" in wrong.text
    code = code_at(secret_of(app, user_id), utcnow())
    done = client.post("/login/2fa", data={"code": code, "next": "/settings/teams"})
    assert done.status_code == 303 and done.location == "/settings/teams"
    assert client.get("/settings/account").status_code == 200
    with client.session_transaction() as session:
        assert "two_factor_pending" not in session


def test_a_code_used_to_log_in_cannot_log_in_again(app, client, make_user):
    user_id = make_user()
    enable(app, user_id)
    forget_last_step(app, user_id)
    code = code_at(secret_of(app, user_id), utcnow())
    password_step(client, app, user_id)
    assert client.post("/login/2fa", data={"code": code}).status_code == 303
    other = app.test_client()
    password_step(other, app, user_id)
    assert other.post("/login/2fa", data={"code": code}).status_code == 422


def test_login_with_a_recovery_code_says_how_many_are_left(app, client, make_user):
    user_id = make_user()
    _secret, codes = enable(app, user_id)
    password_step(client, app, user_id)
    response = client.post("/login/2fa", data={"code": codes[3]}, follow_redirects=True)
    assert response.status_code == 200
    assert "You used a recovery code: 9 are left." in response.text
    client.post("/logout")
    password_step(client, app, user_id)
    assert client.post("/login/2fa", data={"code": codes[3]}).status_code == 422


def test_the_code_step_expires_after_a_few_minutes(app, client, make_user):
    user_id = make_user()
    enable(app, user_id)
    forget_last_step(app, user_id)
    password_step(client, app, user_id)
    with client.session_transaction() as session:
        pending = session["two_factor_pending"]
        late = pending["at"] - app.config["TWO_FACTOR_LOGIN_SECONDS"] - 1
        session["two_factor_pending"] = {**pending, "at": late}
    code = code_at(secret_of(app, user_id), utcnow())
    response = client.post("/login/2fa", data={"code": code})
    assert response.status_code == 303 and response.location.startswith("/login")
    assert client.get("/settings/account").status_code == 302
    assert client.get("/login/2fa").status_code == 303


def test_code_attempts_are_limited_per_account(app, client, make_user):
    user_id = make_user()
    enable(app, user_id)
    forget_last_step(app, user_id)
    password_step(client, app, user_id)
    for _attempt in range(5):
        assert client.post("/login/2fa", data={"code": "000000"}).status_code == 422
    code = code_at(secret_of(app, user_id), utcnow())
    limited = client.post("/login/2fa", data={"code": code})
    assert limited.status_code == 429  # even the right code, once the budget is spent
    assert "Too many wrong codes" in limited.text
    other = app.test_client()  # another browser: the same account's budget
    password_step(other, app, user_id)
    assert other.post("/login/2fa", data={"code": code}).status_code == 429


def test_an_invitation_login_still_confirms_the_address_through_the_code_step(
    app, client, make_user, make_team, outbox
):
    from tests.test_invitations import invite, link_for

    owner = make_user()
    team_id = make_team(owner)
    assert team_id
    invited = make_user(email="new@clinic.example", verified=False)
    enable(app, invited)
    forget_last_step(app, invited)
    admin = app.test_client()
    with app.app_context():
        owner_email = db.session.get(User, owner).email
    admin.post("/login", data={"email": owner_email, "password": PASSWORD})
    invite(admin, "new@clinic.example")
    path = link_for(outbox, "new@clinic.example")
    response = password_step(client, app, invited, next=path)
    assert response.status_code == 303 and response.location.startswith("/login/2fa")
    with app.app_context():
        assert db.session.get(User, invited).is_verified
    done = client.post(
        "/login/2fa",
        data={"code": code_at(secret_of(app, invited), utcnow()), "next": path},
    )
    assert done.status_code == 303 and done.location == path


# -- the settings pages --
def test_setup_page_shows_a_qr_code_and_the_key_and_confirms_with_a_code(
    app, client, make_user, login
):
    user_id = make_user()
    login(user_id)
    page = client.get("/settings/account/two-factor/setup")
    assert page.status_code == 200
    assert "<svg" in page.text and "https://" not in page.text.split("<svg", 1)[1][:200]
    secret = secret_of(app, user_id)
    assert service.grouped(secret) in page.text
    wrong = client.post("/settings/account/two-factor/setup", data={"code": "12"})
    assert wrong.status_code == 422 and 'id="code-error"' in wrong.text
    assert "<svg" in wrong.text  # the same secret to scan again
    assert secret_of(app, user_id) == secret
    done = client.post(
        "/settings/account/two-factor/setup", data={"code": code_at(secret, utcnow())}
    )
    assert done.status_code == 200
    assert done.headers["Cache-Control"] == "no-store"
    codes = re.findall(r"<li><code>([a-z2-9-]{11})</code></li>", done.text)
    assert len(codes) == 10
    download = re.search(r'href="data:text/plain;charset=utf-8,([^"]+)" download="', done.text)
    assert all(code in unquote(download.group(1)) for code in codes)
    status = client.get("/settings/account/two-factor")
    assert "10 recovery codes are left." in status.text
    assert codes[0] not in status.text  # shown once only
    assert "Two-step sign-in" in client.get("/settings/account").text


def test_a_set_up_secret_seen_in_another_session_is_replaced(app, client, make_user, login):
    # Someone who has the password (but not the phone) opens the set-up page first: the
    # secret they saw must not be the one the owner later scans and confirms.
    user_id = make_user(email="clara@clinic.example")
    login(user_id)
    client.get("/settings/account/two-factor/setup")
    seen_elsewhere = secret_of(app, user_id)
    owner = app.test_client()
    owner.post("/login", data={"email": "clara@clinic.example", "password": PASSWORD})
    page = owner.get("/settings/account/two-factor/setup")
    mine = secret_of(app, user_id)
    assert mine != seen_elsewhere and service.grouped(mine) in page.text
    assert (
        secret_of(app, user_id) == mine
        and owner.get(  # a reload keeps it
            "/settings/account/two-factor/setup"
        ).text.count(service.grouped(mine))
        == 1
    )
    assert secret_of(app, user_id) == mine
    stale = owner.post(
        "/settings/account/two-factor/setup", data={"code": code_at(seen_elsewhere, utcnow())}
    )
    assert stale.status_code == 422


def test_setup_with_htmx_swaps_the_panel(app, client, make_user, login):
    user_id = make_user()
    login(user_id)
    fragment = client.get("/settings/account/two-factor/setup", headers=HX)
    assert fragment.text.lstrip().startswith('<section class="card" id="two-factor"')
    wrong = client.post("/settings/account/two-factor/setup", data={"code": "000000x"}, headers=HX)
    assert wrong.status_code == 422 and "<html" not in wrong.text
    code = code_at(secret_of(app, user_id), utcnow())
    done = client.post("/settings/account/two-factor/setup", data={"code": code}, headers=HX)
    assert done.status_code == 200 and "<html" not in done.text
    assert 'id="recovery-codes"' in done.text


def test_turning_off_on_the_page_needs_password_and_code(app, client, make_user, login, outbox):
    user_id = make_user()
    _secret, codes = enable(app, user_id)
    forget_last_step(app, user_id)
    password_step(client, app, user_id)
    client.post("/login/2fa", data={"code": codes[0]})
    wrong = client.post(
        "/settings/account/two-factor/disable",
        data={"disable-password": "nope", "disable-code": codes[1]},
    )
    assert wrong.status_code == 422 and 'id="disable-password-error"' in wrong.text
    no_code = client.post(
        "/settings/account/two-factor/disable",
        data={"disable-password": PASSWORD, "disable-code": "000000"},
        headers=HX,
    )
    assert no_code.status_code == 422 and 'id="disable-code-error"' in no_code.text
    done = client.post(
        "/settings/account/two-factor/disable",
        data={"disable-password": PASSWORD, "disable-code": codes[1]},
        headers=HX,
    )
    assert done.headers["HX-Redirect"] == "/settings/account"
    with app.app_context():
        assert not service.is_enabled(db.session.get(User, user_id))
    client.post("/logout")
    assert password_step(client, app, user_id).location == "/settings/account"


def test_new_recovery_codes_on_the_page(app, client, make_user):
    user_id = make_user()
    _secret, codes = enable(app, user_id)
    password_step(client, app, user_id)
    client.post("/login/2fa", data={"code": codes[0]})
    wrong = client.post(
        "/settings/account/two-factor/recovery-codes", data={"regenerate-code": "1"}
    )
    assert wrong.status_code == 422 and 'id="regenerate-code-error"' in wrong.text
    done = client.post(
        "/settings/account/two-factor/recovery-codes", data={"regenerate-code": codes[1]}
    )
    assert done.status_code == 200
    new = re.findall(r"<li><code>([a-z2-9-]{11})</code></li>", done.text)
    assert len(new) == 10 and codes[2] not in new


@pytest.mark.postgres
def test_two_requests_with_the_same_code_at_once_one_wins(app, make_user):
    from tests.test_concurrency import race

    user_id = make_user()
    secret, codes = enable(app, user_id)
    later = utcnow() + timedelta(minutes=2)
    code = code_at(secret, later)

    def use(value):
        return lambda: service.verify(db.session.get(User, user_id), value, now=later)

    assert sorted(race(app, use(code), use(code))) == [False, True]
    assert sorted(race(app, use(codes[0]), use(codes[0]))) == [False, True]
    with app.app_context():
        assert service.recovery_codes_left(db.session.get(User, user_id)) == 9
