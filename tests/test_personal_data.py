"""Export my data (GDPR art. 20) and Delete my account (art. 17)."""

import json
from datetime import date, timedelta

import pyotp
import pytest

from devtools.provision import provision_subscription
from portal.audit.models import AuditEvent
from portal.auth import service as auth
from portal.auth.models import User
from portal.billing.models import Subscription
from portal.clinical_sessions.models import ClinicalSession
from portal.clock import utcnow
from portal.extensions import db
from portal.outbox.models import OutboxMessage
from portal.personal_data import service
from portal.referrals.models import Referral
from portal.team_templates.models import NoteTemplate
from portal.teams.models import Membership, Team
from portal.twofa.models import TwoFactor
from tests.conftest import PASSWORD, work_off_outbox

HX = {"HX-Request": "true"}
MADS = "mads@clinic.example"


@pytest.fixture
def clinic(app, make_user, make_team):
    """Olga owns the team and pays; Mads is a member with a template, sessions, a referral."""
    people = {
        "owner": make_user(email="olga@clinic.example", name="Olga Owner"),
        "mads": make_user(email=MADS, name="Mads Member", locale="da"),
        "referred": make_user(email="rita@else.example", name="Rita Referred"),
    }
    people["team"] = make_team(people["owner"], members=[(people["mads"], "member")])
    with app.app_context():
        mads = people["mads"]
        db.session.add_all(
            [
                NoteTemplate(title="Knæ", body="Anamnese", owner_id=mads, search_text="knæ"),
                ClinicalSession(
                    owner_id=mads,
                    title="Konsultation",
                    date=date(2026, 11, 30),
                    note="Patienten har ondt i knæet.",
                    shared_team_id=people["team"],
                    shared_at=utcnow(),
                ),
                ClinicalSession(owner_id=mads, title="Opfølgning", date=date(2026, 12, 1)),
                NoteTemplate(title="Olga's", body="x", owner_id=people["owner"], search_text="o"),
                Referral(referrer_id=mads, referred_id=people["referred"]),
            ]
        )
        db.session.commit()
    return people


def delete(app, user_id, password=PASSWORD):
    with app.test_request_context():
        service.delete_account(db.session.get(User, user_id), password=password, now=utcnow())
        db.session.commit()


def as_user(app, user_id):
    client = app.test_client()
    with app.app_context():
        email = db.session.get(User, user_id).email
    assert client.post("/login", data={"email": email, "password": PASSWORD}).status_code == 303
    return client


# -- export --
def test_the_export_holds_profile_membership_templates_sessions_and_referrals(app, clinic):
    response = as_user(app, clinic["mads"]).get("/settings/account/export")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    assert response.headers["Cache-Control"] == "no-store"
    data = json.loads(response.text)
    assert data["profile"]["email"] == MADS and data["profile"]["name"] == "Mads Member"
    assert data["profile"]["language"] == "da"
    [membership] = data["memberships"]
    assert membership["team"] == "Nørrebro Klinik" and membership["role"] == "member"
    assert membership["joined_at"] and membership["owner"] is False
    assert [t["title"] for t in data["templates"]] == ["Knæ"]  # not Olga's, not the team's
    assert [(s["title"], s["shared_with_team"]) for s in data["sessions"]] == [
        ("Konsultation", "Nørrebro Klinik"),
        ("Opfølgning", None),
    ]
    assert data["sessions"][0]["note"] == "Patienten har ondt i knæet."
    [referral] = data["referrals"]["signed_up_through_your_link"]
    assert referral["name"] == "Rita Referred"
    assert data["subscriptions"] == []
    owner = json.loads(as_user(app, clinic["owner"]).get("/settings/account/export").text)
    assert owner["memberships"][0]["owner"] is True
    assert [s["plan"] for s in owner["subscriptions"]] == ["pro"]


def test_the_export_needs_a_login(client):
    assert client.get("/settings/account/export").status_code == 302


# -- deletion: the service --
def test_the_owner_cannot_delete_the_account(app, clinic):
    with pytest.raises(service.OwnsTeamError, match="Transfer ownership"):
        delete(app, clinic["owner"])
    with app.app_context():
        assert db.session.get(User, clinic["owner"]).deleted_at is None


def test_a_wrong_password_is_refused_on_its_field(app, clinic):
    with pytest.raises(service.DeletionRefused) as refused:
        delete(app, clinic["mads"], password="not my password")
    assert refused.value.field == "password"
    with app.app_context():
        assert db.session.get(User, clinic["mads"]).email == MADS


def test_deleting_a_member_leaves_the_team_and_its_seats_go_down(app, clinic, stripe_api):
    with app.app_context():
        subscription = db.session.get(Team, clinic["team"]).subscription.stripe_subscription_id
    work_off_outbox(app)
    assert stripe_api.get(f"/v1/subscriptions/{subscription}")["items"]["data"][0]["quantity"] == 2
    delete(app, clinic["mads"])
    with app.app_context():
        assert db.session.query(Membership).filter_by(user_id=clinic["mads"]).count() == 0
        kinds = [r.kind for r in db.session.query(OutboxMessage).filter_by(status="pending")]
        assert "sync_seats" in kinds
    work_off_outbox(app)
    assert stripe_api.get(f"/v1/subscriptions/{subscription}")["items"]["data"][0]["quantity"] == 1
    with app.app_context():
        assert db.session.get(Team, clinic["team"]).subscription.quantity == 1


def test_the_own_subscription_is_cancelled_at_once_by_the_worker(app, make_user, stripe_api):
    solo = make_user(email="solo@clinic.example", name="Solo Pro")
    with app.test_request_context():
        own = provision_subscription(db.session.get(User, solo), plan="pro", interval="month")
        db.session.commit()
        stripe_id = own.stripe_subscription_id
    delete(app, solo)
    # No Stripe write in the request: the worker cancels.
    assert stripe_api.get(f"/v1/subscriptions/{stripe_id}")["status"] == "active"
    work_off_outbox(app)
    remote = stripe_api.get(f"/v1/subscriptions/{stripe_id}")
    assert remote["status"] == "canceled"
    assert stripe_api.list("refunds") == []  # the period paid is not refunded
    with app.app_context():
        row = db.session.query(Subscription).filter_by(stripe_subscription_id=stripe_id).one()
        assert row.status == "canceled" and row.user_id == solo  # kept for the invoices
        assert db.session.get(User, solo).stripe_customer_id == remote["customer"]


def test_personal_data_is_gone_and_the_row_stays_empty(app, clinic, outbox):
    delete(app, clinic["mads"])
    with app.app_context():
        user = db.session.get(User, clinic["mads"])
        assert user.name == "deleted user"
        assert user.email == f"deleted-{user.id}@invalid"
        assert user.locale is None and user.referral_code is None and user.last_seen_at is None
        assert user.deleted_at is not None and user.email_verified_at is None
        assert auth.authenticate(user.email, PASSWORD) is None
        assert auth.authenticate(MADS, PASSWORD) is None
        assert db.session.query(NoteTemplate).filter_by(owner_id=user.id).count() == 0
        assert db.session.query(NoteTemplate).filter_by(owner_id=clinic["owner"]).count() == 1
        assert db.session.query(ClinicalSession).filter_by(owner_id=user.id).count() == 0
        assert db.session.query(Referral).count() == 0
    [goodbye] = outbox(MADS)
    assert goodbye["subject"] == "Din konto er slettet"  # in the account's language
    assert "deleted user" in goodbye["text"]


def test_audit_rows_remain_and_show_deleted_user(app, clinic):
    with app.test_request_context():
        from portal.audit import service as audit

        audit.record(
            clinic["team"],
            "member.role",
            actor=db.session.get(User, clinic["owner"]),
            now=utcnow(),
            target="Mads Member",
            old="member",
            new="admin",
        )
        audit.record(
            clinic["team"],
            "invitation.sent",
            actor=db.session.get(User, clinic["owner"]),
            now=utcnow(),
            target=MADS,
        )
        audit.record(999, "member.removed", actor=None, now=utcnow(), target="Mads Member")
        db.session.commit()
        before = db.session.query(AuditEvent).count()
    delete(app, clinic["mads"])
    with app.app_context():
        rows = db.session.query(AuditEvent).order_by(AuditEvent.id).all()
        assert len(rows) == before + 2  # the shared session stops being shared, Mads left
        texts = [(r.team_id, r.actor_name, r.action, r.target) for r in rows]
        assert (clinic["team"], "Olga Owner", "member.role", "deleted user") in texts
        assert (clinic["team"], "Olga Owner", "invitation.sent", "deleted user") in texts
        assert (clinic["team"], "deleted user", "member.left", "deleted user") in texts
        assert (999, "system", "member.removed", "Mads Member") in texts  # another team's namesake
        assert not any("Mads" in r.actor_name or MADS in r.target for r in rows if r.team_id != 999)
    # The log reads "deleted user" in the reader's language, as actor and as target.
    olga = as_user(app, clinic["owner"])
    with app.app_context():
        db.session.get(User, clinic["owner"]).locale = "da"
        db.session.commit()
    danish = " ".join(olga.get("/settings/teams/audit").text.split())
    assert "<strong>slettet bruger</strong> forlod teamet" in danish
    assert "ændrede rollen for slettet bruger fra" in danish
    assert "deleted user" not in danish.replace('value="deleted user"', "")  # the filter's key
    assert '<option value="deleted user">slettet bruger</option>' in danish


def test_the_deleted_address_can_sign_up_again(app, clinic, client, outbox):
    delete(app, clinic["mads"])
    response = client.post(
        "/signup", data={"name": "Mads Again", "email": MADS, "password": "a fresh passphrase 42"}
    )
    assert response.status_code == 200 and "Check your inbox" in response.text
    with app.app_context():
        again = auth.find_user_by_email(MADS)
        assert again is not None and again.id != clinic["mads"] and again.name == "Mads Again"


# -- deletion: the pages --
def test_the_page_says_what_is_kept_and_why_before_confirming(app, clinic):
    page = as_user(app, clinic["mads"]).get("/settings/account/delete")
    assert page.status_code == 200
    text = " ".join(page.text.split())
    assert 'id="what-is-kept"' in text and "bogføringsloven" in text  # Mads reads Danish
    assert "deleted user" in text and "Du forlader teamet Nørrebro Klinik" in text
    assert 'name="password"' in text and 'action="/settings/account/delete"' in text


def test_the_owner_sees_why_and_where_to_go_instead(app, clinic):
    owner = as_user(app, clinic["owner"])
    page = owner.get("/settings/account/delete")
    assert "Transfer ownership to another admin, or delete the team" in page.text
    assert 'href="/settings/teams/ownership"' in page.text
    assert 'href="/settings/teams/delete"' in page.text
    assert 'name="password"' not in page.text
    refused = owner.post("/settings/account/delete", data={"password": PASSWORD})
    assert refused.status_code == 409 and 'id="deletion-refused"' in refused.text
    htmx = owner.post("/settings/account/delete", data={"password": PASSWORD}, headers=HX)
    assert htmx.status_code == 409 and htmx.headers["HX-Redirect"] == "/settings/account/delete"
    with app.app_context():
        assert db.session.get(User, clinic["owner"]).deleted_at is None


def test_no_js_deletion_wrong_password_then_goodbye(app, clinic):
    client = as_user(app, clinic["mads"])
    wrong = client.post("/settings/account/delete", data={"password": "not it"})
    assert wrong.status_code == 422 and 'id="password-error"' in wrong.text
    assert "<html" in wrong.text and "Det er ikke din nuværende adgangskode." in wrong.text
    done = client.post("/settings/account/delete", data={"password": PASSWORD})
    assert done.status_code == 303 and done.headers["Location"].endswith("/goodbye")
    assert "Din konto er slettet" in client.get("/goodbye").text
    assert client.get("/settings/account").status_code == 302  # logged out


def test_htmx_deletion_swaps_the_form_or_redirects(app, clinic):
    client = as_user(app, clinic["mads"])
    wrong = client.post("/settings/account/delete", data={"password": "not it"}, headers=HX)
    assert wrong.status_code == 422 and "<html" not in wrong.text
    assert wrong.text.lstrip().startswith('<form id="delete-account"')
    done = client.post("/settings/account/delete", data={"password": PASSWORD}, headers=HX)
    assert done.status_code == 200 and done.headers["HX-Redirect"] == "/goodbye"
    assert client.get("/settings/account").status_code == 302


def test_the_account_page_links_export_and_deletion(app, clinic):
    page = as_user(app, clinic["mads"]).get("/settings/account").text
    assert 'href="/settings/account/export"' in page
    assert 'href="/settings/account/delete"' in page


def test_the_placeholder_address_takes_no_reset_and_no_login(app, clinic, client, outbox):
    delete(app, clinic["mads"])
    placeholder = f"deleted-{clinic['mads']}@invalid"
    before = len(outbox())
    assert client.post("/password/forgot", data={"email": placeholder}).status_code == 422
    login = client.post("/login", data={"email": placeholder, "password": "!deleted"})
    assert login.status_code == 422
    assert len(outbox()) == before


# -- deletion with two-step sign-in on --
def enable_two_factor(app, user_id):
    from tests.test_two_factor import enable

    return enable(app, user_id, now=utcnow() - timedelta(minutes=2))


def test_with_two_step_sign_in_on_deletion_takes_a_code(app, clinic):
    secret, recovery = enable_two_factor(app, clinic["mads"])
    for code in (None, "", "000000"):
        with pytest.raises(service.DeletionRefused) as refused, app.test_request_context():
            user = db.session.get(User, clinic["mads"])
            service.delete_account(user, password=PASSWORD, code=code, now=utcnow())
        assert refused.value.field == "code"
        with app.app_context():
            assert db.session.get(User, clinic["mads"]).deleted_at is None
    with app.test_request_context():
        user = db.session.get(User, clinic["mads"])
        service.delete_account(user, password=PASSWORD, code=recovery[0], now=utcnow())
        db.session.commit()
    with app.app_context():
        assert db.session.get(User, clinic["mads"]).deleted_at is not None
        assert db.session.query(TwoFactor).filter_by(user_id=clinic["mads"]).count() == 0


def test_a_wrong_password_does_not_use_up_the_code(app, clinic):
    secret, _ = enable_two_factor(app, clinic["mads"])
    code = pyotp.TOTP(secret).now()
    with pytest.raises(service.DeletionRefused) as refused, app.test_request_context():
        user = db.session.get(User, clinic["mads"])
        service.delete_account(user, password="not it", code=code, now=utcnow())
    assert refused.value.field == "password"
    with app.test_request_context():
        user = db.session.get(User, clinic["mads"])
        service.delete_account(user, password=PASSWORD, code=code, now=utcnow())


def test_the_page_asks_for_the_code_only_when_two_step_sign_in_is_on(app, clinic):
    assert 'name="code"' not in as_user(app, clinic["mads"]).get("/settings/account/delete").text
    secret, _ = enable_two_factor(app, clinic["mads"])
    client = app.test_client()
    client.post("/login", data={"email": MADS, "password": PASSWORD})
    client.post("/login/2fa", data={"code": pyotp.TOTP(secret).now()})
    page = client.get("/settings/account/delete")
    assert page.status_code == 200 and 'name="code"' in page.text
    assert 'autocomplete="one-time-code"' in page.text
    wrong = client.post("/settings/account/delete", data={"password": PASSWORD, "code": "123456"})
    assert wrong.status_code == 422 and 'id="code-error"' in wrong.text
    with app.app_context():
        assert db.session.get(User, clinic["mads"]).deleted_at is None
