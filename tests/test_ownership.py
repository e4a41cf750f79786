"""Ownership transfer: the owner offers the team to another admin, who accepts by emailed link."""

import re
from datetime import timedelta

import pytest

from portal.audit.models import AuditEvent
from portal.auth.models import User
from portal.billing.models import Subscription
from portal.clock import utcnow
from portal.exceptions import ConflictError, NotFoundError
from portal.extensions import db
from portal.invitations.service import hash_token
from portal.ownership import service
from portal.ownership.models import OwnershipTransfer
from portal.teams.models import Membership, Team
from tests.conftest import PASSWORD, work_off_outbox

HX = {"HX-Request": "true"}
OFFER = "/settings/teams/ownership"


@pytest.fixture
def clinic(app, make_user, make_team):
    """Olga owns the team (and pays); Anna and Bo are admins, Mads a member; Pia owns another."""
    people = {
        "owner": make_user(email="olga@clinic.example", name="Olga Owner"),
        "anna": make_user(email="anna@clinic.example", name="Anna Admin"),
        "bo": make_user(email="bo@clinic.example", name="Bo Admin"),
        "mads": make_user(email="mads@clinic.example", name="Mads Member"),
        "pia": make_user(email="pia@other.example", name="Pia Other"),
    }
    people["team"] = make_team(
        people["owner"],
        members=[(people["anna"], "admin"), (people["bo"], "admin"), (people["mads"], "member")],
    )
    people["other_team"] = make_team(people["pia"], name="Other Klinik")
    with app.app_context():
        memberships = db.session.query(Membership).all()
        people["m"] = {m.user_id: m.id for m in memberships}
    return people


def as_user(app, user_id):
    client = app.test_client()
    with app.app_context():
        email = db.session.get(User, user_id).email
    assert client.post("/login", data={"email": email, "password": PASSWORD}).status_code == 303
    return client


def offer(app, clinic, to="anna", **headers):
    owner = as_user(app, clinic["owner"])
    response = owner.post(OFFER, data={"admin": clinic["m"][clinic[to]]}, headers=headers)
    return owner, response


def link_in(outbox, to) -> str:
    [mail] = [m for m in outbox(to) if "/ownership/" in m["text"]][-1:]
    return re.search(r"http://localhost(/ownership/\S+)", mail["text"]).group(1)


def team_row(app, team_id):
    with app.app_context():
        team = db.session.get(Team, team_id)
        return {
            "owner_id": team.owner_id,
            "payer": team.subscription.user_id,
            "customer": team.subscription.stripe_customer_id,
            "subscription": team.subscription.stripe_subscription_id,
        }


def stripe_customer_of(app, user_id):
    with app.app_context():
        return db.session.get(User, user_id).stripe_customer_id


def only_offer(app):
    with app.app_context():
        return db.session.query(OwnershipTransfer).one()


# -- offering --
def test_owner_offers_to_an_admin_who_gets_a_link_valid_7_days(app, clinic, outbox):
    _owner, response = offer(app, clinic)
    assert response.status_code == 303 and response.location.endswith(OFFER)
    link = link_in(outbox, "anna@clinic.example")
    token = link.rsplit("/", 1)[1]
    assert len(token) >= 43
    row = only_offer(app)
    assert row.status == "pending" and row.token_hash == hash_token(token)
    assert token not in repr(row.__dict__)
    assert row.expires_at - row.created_at == timedelta(days=7)
    [mail] = outbox("anna@clinic.example")
    assert mail["subject"] == "Olga Owner asks you to take over Nørrebro Klinik"
    assert "card on file" in mail["text"]
    assert "changes nothing until you press Accept" in mail["text"]
    with app.app_context():
        event = db.session.query(AuditEvent).filter_by(action="ownership.offered").one()
        assert event.target == "Anna Admin"


@pytest.mark.parametrize("target", ["mads", "owner"])
def test_ownership_goes_only_to_another_admin(app, clinic, target):
    _owner, response = offer(app, clinic, to=target)
    assert response.status_code == 422  # not a choice of the form
    assert only_offer_count(app) == 0
    with app.test_request_context():
        me = db.session.query(Membership).filter_by(user_id=clinic["owner"]).one()
        with pytest.raises(ConflictError):
            service.offer_ownership(me, clinic["m"][clinic[target]], now=utcnow())


def only_offer_count(app):
    with app.app_context():
        return db.session.query(OwnershipTransfer).count()


def test_a_membership_of_another_team_is_not_found(app, clinic):
    with app.test_request_context():
        me = db.session.query(Membership).filter_by(user_id=clinic["owner"]).one()
        with pytest.raises(NotFoundError):
            service.offer_ownership(me, clinic["m"][clinic["pia"]], now=utcnow())


def test_one_pending_offer_per_team_until_cancelled(app, clinic, outbox):
    owner, _ = offer(app, clinic)
    second = owner.post(OFFER, data={"admin": clinic["m"][clinic["bo"]]})
    assert second.status_code == 409 and "already offered to Anna Admin" in second.text
    link = link_in(outbox, "anna@clinic.example")
    assert owner.post(OFFER + "/cancel").status_code == 303
    assert only_offer(app).status == "cancelled"
    gone = as_user(app, clinic["anna"]).get(link)
    assert gone.status_code == 410 and "cancelled" in gone.text
    assert owner.post(OFFER, data={"admin": clinic["m"][clinic["bo"]]}).status_code == 303
    with app.app_context():
        actions = [e.action for e in db.session.query(AuditEvent).order_by(AuditEvent.id)]
        assert actions[-3:] == ["ownership.offered", "ownership.cancelled", "ownership.offered"]


def test_an_offer_cancelled_before_its_email_went_out_is_not_sent(app, clinic, outbox):
    owner, _ = offer(app, clinic)
    owner.post(OFFER + "/cancel")
    work_off_outbox(app)
    [mail] = outbox("anna@clinic.example")
    with app.app_context():
        from portal.outbox.service import EMAIL_GUARDS

        assert EMAIL_GUARDS["ownership_offer"](mail["guard"]["args"]) is False


# -- the link --
def test_opening_the_link_changes_nothing_and_asks_to_log_in(app, clinic, client, outbox):
    offer(app, clinic)
    link = link_in(outbox, "anna@clinic.example")
    page = client.get(link)
    assert page.status_code == 200
    assert "Log in to answer" in page.text
    assert 'href="/login?email=anna@clinic.example&amp;next=/ownership/' in page.text
    assert only_offer(app).status == "pending"
    assert team_row(app, clinic["team"])["owner_id"] == clinic["owner"]
    # Logging in from the link comes back to it, with Accept.
    login = client.post(
        "/login", data={"email": "anna@clinic.example", "password": PASSWORD, "next": link}
    )
    assert login.status_code == 303 and login.location.endswith(link)
    assert "Accept and become the owner" in client.get(link).text


def test_a_wrong_account_is_told_so_and_cannot_answer(app, clinic, outbox):
    offer(app, clinic)
    link = link_in(outbox, "anna@clinic.example")
    for who in ("mads", "bo", "pia"):
        other = as_user(app, clinic[who])
        page = other.get(link)
        assert "This offer is for anna@clinic.example; you are signed in as" in page.text
        assert other.post(link + "/accept").status_code == 403
        assert other.post(link + "/decline").status_code == 403
    assert only_offer(app).status == "pending"
    assert team_row(app, clinic["team"])["owner_id"] == clinic["owner"]


def test_answering_needs_a_signed_in_user(app, clinic, client, outbox):
    offer(app, clinic)
    link = link_in(outbox, "anna@clinic.example")
    for action in ("/accept", "/decline"):
        response = client.post(link + action)
        assert response.status_code == 302 and "/login" in response.location
    assert only_offer(app).status == "pending"


def test_an_unknown_link_is_404(client):
    assert client.get("/ownership/not-a-real-token").status_code == 404


# -- accepting --
def test_accepting_moves_ownership_and_billing_and_keeps_the_subscription(
    app, clinic, outbox, stripe_api
):
    before = team_row(app, clinic["team"])
    old_customer = stripe_customer_of(app, clinic["owner"])
    assert before["customer"] == old_customer
    offer(app, clinic)
    link = link_in(outbox, "anna@clinic.example")
    invoices_before = len(stripe_api.list("invoices", customer=before["customer"]))
    anna = as_user(app, clinic["anna"])
    accepted = anna.post(link + "/accept")
    assert accepted.status_code == 303 and accepted.location.endswith("/settings/teams/billing")
    after = team_row(app, clinic["team"])
    assert after == {**before, "owner_id": clinic["anna"], "payer": clinic["anna"]}
    assert stripe_customer_of(app, clinic["anna"]) == before["customer"]
    assert stripe_customer_of(app, clinic["owner"]) is None
    with app.app_context():
        olga = db.session.query(Membership).filter_by(user_id=clinic["owner"]).one()
        assert olga.role == "admin" and not olga.is_owner
        event = db.session.query(AuditEvent).filter_by(action="ownership.accepted").one()
        assert (event.actor_id, event.target) == (clinic["anna"], "Olga Owner")
        assert db.session.query(Subscription).count() == 2  # Pia's and the team's: no new one
    [new_mail] = [m for m in outbox("anna@clinic.example") if "You now own" in m["subject"]]
    assert "check the card on file" in new_mail["text"]
    [old_mail] = outbox("olga@clinic.example")
    assert old_mail["subject"] == "Anna Admin now owns Nørrebro Klinik"
    assert "you stay an admin" in old_mail["text"]

    # The billing page: Anna manages billing and is asked to check the card.
    billing = anna.get("/settings/teams/billing")
    assert "Manage billing" in billing.text and 'id="card-check"' in billing.text
    olga = as_user(app, clinic["owner"])
    read_only = olga.get("/settings/teams/billing").text
    assert "Only the team owner, Anna Admin, changes billing." in read_only
    assert olga.get(OFFER).status_code == 403
    assert olga.post("/settings/teams/billing/plan", data={"plan": "practice"}).status_code == 403

    # Stripe: the same customer and subscription, now naming Anna; nothing charged.
    work_off_outbox(app)
    customer = stripe_api.get(f"/v1/customers/{before['customer']}")
    assert customer["metadata"]["user_id"] == str(clinic["anna"])
    assert customer["email"] == "anna@clinic.example"  # it was the old owner's own
    remote = stripe_api.get(f"/v1/subscriptions/{before['subscription']}")
    assert remote["metadata"]["user_id"] == str(clinic["anna"])
    assert remote["status"] == "active" and remote["customer"] == before["customer"]
    assert remote["items"]["data"][0]["quantity"] == 4
    assert len(stripe_api.list("invoices", customer=before["customer"])) == invoices_before
    assert len([s for s in stripe_api.list("subscriptions") if s["status"] == "active"]) == 2

    # Opening Manage billing ends the card reminder.
    assert anna.post("/billing/portal").status_code == 303
    assert 'id="card-check"' not in anna.get("/settings/teams/billing").text


def test_a_clinic_billing_email_stays_when_ownership_moves(app, clinic, outbox, stripe_api):
    customer = team_row(app, clinic["team"])["customer"]
    stripe_api.post(f"/v1/customers/{customer}", {"email": "regnskab@clinic.example"})
    offer(app, clinic)
    as_user(app, clinic["anna"]).post(link_in(outbox, "anna@clinic.example") + "/accept")
    work_off_outbox(app)
    remote = stripe_api.get(f"/v1/customers/{customer}")
    assert remote["email"] == "regnskab@clinic.example"
    assert remote["metadata"]["user_id"] == str(clinic["anna"])


def test_the_old_owners_next_own_checkout_gets_a_fresh_customer(app, clinic, outbox):
    team_customer = team_row(app, clinic["team"])["customer"]
    offer(app, clinic)
    as_user(app, clinic["anna"]).post(link_in(outbox, "anna@clinic.example") + "/accept")
    olga = as_user(app, clinic["owner"])
    assert olga.post("/settings/teams/leave").status_code == 303
    checkout = olga.post("/billing/checkout", data={"plan": "pro", "interval": "month"})
    assert checkout.status_code == 303
    fresh = stripe_customer_of(app, clinic["owner"])
    assert fresh and fresh != team_customer
    assert stripe_customer_of(app, clinic["anna"]) == team_customer


def test_a_double_accept_makes_one_owner(app, clinic, outbox):
    offer(app, clinic)
    link = link_in(outbox, "anna@clinic.example")
    anna = as_user(app, clinic["anna"])
    assert anna.post(link + "/accept").status_code == 303
    again = anna.post(link + "/accept")
    assert again.status_code == 303 and again.location.endswith("/settings/teams/billing")
    with app.test_request_context():
        row = db.session.query(OwnershipTransfer).one()
        with pytest.raises(service.OfferGoneError):
            service.accept_offer(row, db.session.get(User, clinic["anna"]), now=utcnow())
        db.session.rollback()
        assert db.session.query(AuditEvent).filter_by(action="ownership.accepted").count() == 1
    assert len([m for m in outbox("olga@clinic.example") if "now owns" in m["subject"]]) == 1


def test_accept_and_decline_at_once_one_wins(app, clinic, outbox):
    offer(app, clinic)
    with app.test_request_context():
        row = db.session.query(OwnershipTransfer).one()
        anna = db.session.get(User, clinic["anna"])
        service.accept_offer(row, anna, now=utcnow())
        db.session.commit()
        with pytest.raises(service.OfferGoneError):
            service.decline_offer(row, anna, now=utcnow())


def test_the_offer_expires_after_7_days(app, clinic, outbox, monkeypatch):
    offer(app, clinic)
    link = link_in(outbox, "anna@clinic.example")
    expires = only_offer(app).expires_at
    anna = as_user(app, clinic["anna"])
    import portal.ownership.views as views

    monkeypatch.setattr(views, "utcnow", lambda: expires + timedelta(seconds=1))
    late = anna.post(link + "/accept")
    assert late.status_code == 410 and "valid for 7 days" in late.text
    assert anna.get(link).status_code == 410
    assert team_row(app, clinic["team"])["owner_id"] == clinic["owner"]
    monkeypatch.setattr(views, "utcnow", lambda: expires - timedelta(seconds=1))
    assert anna.post(link + "/accept").status_code == 303
    assert team_row(app, clinic["team"])["owner_id"] == clinic["anna"]


def test_after_expiry_the_owner_can_offer_again(app, clinic, monkeypatch):
    offer(app, clinic)
    expires = only_offer(app).expires_at
    import portal.ownership.views as views

    monkeypatch.setattr(views, "utcnow", lambda: expires + timedelta(minutes=1))
    owner = as_user(app, clinic["owner"])
    assert owner.post(OFFER, data={"admin": clinic["m"][clinic["bo"]]}).status_code == 303
    with app.app_context():
        statuses = [o.status for o in db.session.query(OwnershipTransfer).order_by("id")]
    assert statuses == ["expired", "pending"]


# -- declining, lapsing --
def test_declining_keeps_the_owner_and_tells_them(app, clinic, outbox):
    offer(app, clinic)
    link = link_in(outbox, "anna@clinic.example")
    declined = as_user(app, clinic["anna"]).post(link + "/decline")
    assert declined.status_code == 303
    assert only_offer(app).status == "declined"
    assert team_row(app, clinic["team"])["owner_id"] == clinic["owner"]
    [mail] = outbox("olga@clinic.example")
    assert mail["subject"] == "Anna Admin declined to take over Nørrebro Klinik"
    with app.app_context():
        assert db.session.query(AuditEvent).filter_by(action="ownership.declined").count() == 1


@pytest.mark.parametrize("how", ["demoted", "removed", "left"])
def test_the_offer_lapses_when_the_target_stops_being_an_admin(app, clinic, outbox, how):
    owner, _ = offer(app, clinic)
    link = link_in(outbox, "anna@clinic.example")
    anna_membership = clinic["m"][clinic["anna"]]
    if how == "demoted":
        owner.post(f"/settings/teams/members/{anna_membership}/role", data={"role": "member"})
    elif how == "removed":
        owner.post(f"/settings/teams/members/{anna_membership}/remove")
    else:
        as_user(app, clinic["anna"]).post("/settings/teams/leave")
    assert only_offer(app).status == "lapsed"
    gone = as_user(app, clinic["anna"]).get(link)
    assert gone.status_code == 410 and "no longer an admin" in gone.text
    with app.app_context():
        assert db.session.query(AuditEvent).filter_by(action="ownership.lapsed").count() == 1


def test_deleting_the_team_cancels_the_offer(app, clinic, outbox):
    owner, _ = offer(app, clinic)
    link = link_in(outbox, "anna@clinic.example")
    deleted = owner.post("/settings/teams/delete", data={"confirm": "Nørrebro Klinik"})
    assert deleted.status_code == 303
    row = only_offer(app)
    assert (row.status, row.team_id) == ("cancelled", None)
    assert as_user(app, clinic["anna"]).get(link).status_code == 410


# -- access --
@pytest.mark.parametrize("who", ["anna", "mads", None])
def test_only_the_owner_offers_or_cancels(app, clinic, client, who):
    actor = as_user(app, clinic[who]) if who else client
    for method, path, data in (
        ("get", OFFER, None),
        ("post", OFFER, {"admin": clinic["m"][clinic["bo"]]}),
        ("post", OFFER + "/cancel", None),
    ):
        response = getattr(actor, method)(path, data=data)
        expected = 302 if who is None else 403
        assert response.status_code == expected, (who, path)
    assert only_offer_count(app) == 0


def test_pias_offer_cannot_name_a_member_of_our_team(app, clinic):
    pia = as_user(app, clinic["pia"])
    assert pia.post(OFFER, data={"admin": clinic["m"][clinic["anna"]]}).status_code == 422


def test_a_member_of_another_team_who_was_the_target_cannot_accept(app, clinic, outbox):
    """Anna leaves for Pia's team: the offer lapsed and her new membership gives her nothing."""
    offer(app, clinic)
    link = link_in(outbox, "anna@clinic.example")
    anna = as_user(app, clinic["anna"])
    anna.post("/settings/teams/leave")
    assert anna.post(link + "/accept").status_code == 410


# -- pages --
def test_htmx_offer_and_cancel_swap_the_section(app, clinic):
    owner = as_user(app, clinic["owner"])
    bad = owner.post(OFFER, data={"admin": "999"}, headers=HX)
    assert bad.status_code == 422 and 'id="ownership-offer"' in bad.text
    assert "<html" not in bad.text
    made = owner.post(OFFER, data={"admin": clinic["m"][clinic["anna"]]}, headers=HX)
    assert made.status_code == 200 and "<html" not in made.text
    assert 'id="ownership-pending"' in made.text and "Cancel the offer" in made.text
    assert "Ownership offered to Anna Admin" in made.headers["HX-Trigger"]
    cancelled = owner.post(OFFER + "/cancel", headers=HX)
    assert cancelled.status_code == 200 and "Offer ownership" in cancelled.text


def test_without_js_the_pages_show_the_form_and_the_pending_offer(app, clinic):
    owner = as_user(app, clinic["owner"])
    team_page = owner.get("/settings/teams").text
    assert 'href="/settings/teams/ownership"' in team_page and "Transfer ownership" in team_page
    page = owner.get(OFFER).text
    assert "<html" in page and "Anna Admin (anna@clinic.example)" in page
    assert "Mads Member" not in page  # not an admin
    owner.post(OFFER, data={"admin": clinic["m"][clinic["anna"]]})
    assert 'id="ownership-pending"' in owner.get(OFFER).text
    assert "Ownership is offered to Anna Admin until" in owner.get("/settings/teams").text
    anna_page = as_user(app, clinic["anna"]).get("/settings/teams").text
    assert "Olga Owner offered you ownership of the team until" in anna_page
    assert "Transfer ownership" not in as_user(app, clinic["mads"]).get("/settings/teams").text


def test_the_delete_page_points_to_the_transfer(app, clinic):
    page = as_user(app, clinic["owner"]).get("/settings/teams/delete").text
    assert 'id="transfer-first"' in page and 'href="/settings/teams/ownership"' in page


def test_a_team_without_other_admins_is_told_to_make_one(app, make_user, make_team):
    owner = make_user(email="solo@clinic.example")
    make_team(owner)
    page = as_user(app, owner).get(OFFER).text
    assert "Make a colleague an admin on the team page first." in page


def test_the_pages_and_emails_in_danish(app, make_user, make_team, outbox):
    olga = make_user(email="olga@klinik.dk", name="Olga", locale="da")
    anna = make_user(email="anna@klinik.dk", name="Anna", locale="da")
    team = make_team(olga, members=[(anna, "admin")])
    with app.app_context():
        anna_membership = db.session.query(Membership).filter_by(user_id=anna).one().id
    owner = as_user(app, olga)
    page = owner.get(OFFER).text
    assert "Overdrag ejerskabet" in page and "Tilbyd ejerskabet" in page
    owner.post(OFFER, data={"admin": anna_membership})
    [mail] = outbox("anna@klinik.dk")
    assert mail["subject"] == "Olga beder dig overtage Nørrebro Klinik"
    link = link_in(outbox, "anna@klinik.dk")
    client = as_user(app, anna)
    assert "Accepter og bliv ejer" in client.get(link).text
    client.post(link + "/accept")
    assert 'id="card-check"' in client.get("/settings/teams/billing").text
    assert team_row(app, team)["owner_id"] == anna
    [old] = outbox("olga@klinik.dk")
    assert old["subject"] == "Anna ejer nu Nørrebro Klinik"


# -- races (PostgreSQL: two connections at once) --
def answer(app, user_id, how):
    def action():
        offer = db.session.query(OwnershipTransfer).one()
        user = db.session.get(User, user_id)
        fn = service.accept_offer if how == "accept" else service.decline_offer
        return fn(offer, user, now=utcnow())

    return action


@pytest.mark.postgres
@pytest.mark.parametrize("other", ["accept", "decline"])
def test_two_answers_at_once_one_wins(app, clinic, other):
    from tests.test_concurrency import race

    offer(app, clinic)
    results = race(app, answer(app, clinic["anna"], "accept"), answer(app, clinic["anna"], other))
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], service.OfferGoneError), results
    with app.app_context():
        status = db.session.query(OwnershipTransfer).one().status
        answered = db.session.query(AuditEvent).filter(AuditEvent.action.like("ownership.%ed"))
        assert answered.filter(AuditEvent.action != "ownership.offered").count() == 1
    owner = team_row(app, clinic["team"])["owner_id"]
    assert (status, owner) in (("accepted", clinic["anna"]), ("declined", clinic["owner"]))


@pytest.mark.postgres
def test_an_offer_and_a_demotion_at_once_leave_no_live_offer_to_a_member(app, clinic):
    from portal.teams import service as teams
    from portal.teams.queries import membership_of
    from tests.test_concurrency import race

    offer(app, clinic)

    def demote():
        me = membership_of(db.session.get(User, clinic["bo"]))
        return teams.change_role(me, clinic["m"][clinic["anna"]], "member", now=utcnow())

    race(app, answer(app, clinic["anna"], "accept"), demote)
    with app.app_context():
        status = db.session.query(OwnershipTransfer).one().status
        anna = db.session.query(Membership).filter_by(user_id=clinic["anna"]).one()
        team = db.session.get(Team, clinic["team"])
        if status == "accepted":  # accepted first: Anna owns the team, and Bo cannot demote her
            assert team.owner_id == clinic["anna"] and anna.role == "admin"
        else:
            assert status == "lapsed" and anna.role == "member"
            assert team.owner_id == clinic["owner"]


def test_the_new_owners_billing_page_says_stripe_is_being_updated(app, clinic, outbox):
    offer(app, clinic)
    anna = as_user(app, clinic["anna"])
    anna.post(link_in(outbox, "anna@clinic.example") + "/accept")
    page = anna.get("/settings/teams/billing").text
    assert "Making you the billing contact in Stripe – updating…" in page
    assert "every 2s" in page
    polled = anna.get("/settings/teams/billing/pending", headers=HX)
    assert "updating…" in polled.text and "HX-Refresh" not in polled.headers
    work_off_outbox(app)
    polled = anna.get("/settings/teams/billing/pending?owner=1", headers=HX)
    assert polled.headers.get("HX-Refresh") == "true"
    page = anna.get("/settings/teams/billing").text
    assert "updating…" not in page and "You are now the team&#39;s billing contact" in page
