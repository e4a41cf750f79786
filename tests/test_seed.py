import requests

from devtools.seed import DEMO_PASSWORD, DEMO_USERS, seed_demo
from portal.auth import service as auth
from portal.clinical_sessions.models import ClinicalSession
from portal.extensions import db
from portal.team_templates.models import NoteTemplate
from portal.teams.models import Membership, Team


def test_the_demo_clinic_is_seeded_once_with_working_logins(app, stripe_api, client):
    with app.test_request_context():
        created = seed_demo()
        assert sorted(created) == sorted(email for email, *_ in DEMO_USERS)
        assert seed_demo() == []  # idempotent
        teams = {t.name: t for t in db.session.query(Team)}
        assert set(teams) == {"Demo Lægehus", "Demo Praksis"}
        assert teams["Demo Lægehus"].plan == "pro" and teams["Demo Praksis"].plan == "practice"
        assert db.session.query(Membership).filter_by(role="assistant").count() == 1
        assert db.session.query(NoteTemplate).count() == 3
        assert (
            db.session.query(ClinicalSession)
            .filter(ClinicalSession.shared_team_id.isnot(None))
            .count()
            == 1
        )
        for email, *_ in DEMO_USERS:
            assert auth.authenticate(email, DEMO_PASSWORD) is not None
        customer = teams["Demo Lægehus"].subscription.stripe_customer_id
    invoices = stripe_api.get("/v1/invoices", customer=customer)["data"]
    assert len(invoices) >= 3  # the first payment and two renewals
    # A history, not three identical invoices on one day: each on its own date, with a page.
    days = {invoice["created"] // 86400 for invoice in invoices}
    assert len(days) == len(invoices)
    page = requests.get(invoices[0]["hosted_invoice_url"], timeout=5)
    assert page.status_code == 200 and "Total:" in page.text
    response = client.post("/login", data={"email": "pia@demo.clinic", "password": DEMO_PASSWORD})
    assert response.status_code == 303
    assert "Knæ, opfølgning" in client.get("/templates").text
