import hashlib
import re
from pathlib import Path

import pytest

from portal import create_app
from portal.config import ConfigError
from tests.conftest import PASSWORD

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = {
    "SECRET_KEY": "s",
    "STRIPE_API_KEY": "sk_live_x",
    "STRIPE_WEBHOOK_SECRET": "whsec_x",
    "SQLALCHEMY_DATABASE_URI": "sqlite://",
    "PUBLIC_URL": "https://portal.clinic.example",
    "MAIL_SERVER": "127.0.0.1",
    "RATELIMIT_ALLOW_MEMORY": True,
    "TOTP_ENCRYPTION_KEYS": "mV2qkJ7o7cJ3g0i2w1t5zXb1aQy2Lh0e3m8sYbqg8lE=",
}


def test_healthz_answers_when_the_database_answers(client, app):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {
        "status": "ok",
        "database": "ok",
        "redis": "ok" if app.config["RATELIMIT_STORAGE_URI"].startswith("redis") else "not used",
        "outbox": {"oldest_due_seconds": 0},
    }


def test_healthz_is_503_when_the_database_is_down(tmp_path):
    app = create_app(
        {
            "PORTAL_DEV": True,
            "SECRET_KEY": "t",
            "SQLALCHEMY_DATABASE_URI": "postgresql://nobody@127.0.0.1:1/none",
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"connect_timeout": 1}},
        }
    )
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["database"] == "down"


@pytest.mark.parametrize(
    "missing",
    ["SECRET_KEY", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "PUBLIC_URL", "TOTP_ENCRYPTION_KEYS"],
)
def test_production_refuses_to_start_without_secrets(missing, monkeypatch):
    monkeypatch.delenv("FLASK_PORTAL_DEV", raising=False)
    config = {**PRODUCTION, missing: None}
    with pytest.raises(ConfigError, match=missing):
        create_app(config)


def test_development_routes_are_404_outside_development(monkeypatch):
    monkeypatch.delenv("FLASK_PORTAL_DEV", raising=False)
    app = create_app(PRODUCTION)
    client = app.test_client()
    assert client.get("/dev/mailbox", base_url="https://portal.clinic.example").status_code == 404


def test_production_cookies_are_host_only_and_secure(monkeypatch):
    monkeypatch.delenv("FLASK_PORTAL_DEV", raising=False)
    app = create_app(PRODUCTION)
    assert app.config["SESSION_COOKIE_NAME"] == "__Host-session"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_vendored_htmx_is_the_pinned_release():
    data = (ROOT / "static" / "htmx-2.0.11.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == (
        "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"
    )


def test_pages_send_a_strict_csp_that_allows_htmx(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response.headers["Cache-Control"] == "no-store"
    assert "HX-Request" in response.headers["Vary"]
    html = response.text
    assert '"allowEval":false' in html and '"selfRequestsOnly":true' in html
    assert "<script>" not in html  # no inline script anywhere


def test_unknown_page_is_a_clear_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Page not found" in response.text
    assert "Traceback" not in response.text


def test_every_field_has_a_label(client):
    for path in ("/signup", "/login", "/password/forgot"):
        html = client.get(path).text
        ids = re.findall(r'<input(?![^>]*type="hidden")[^>]*\bid="([^"]+)"[^>]*>', html)
        visible = [i for i in ids if f'id="{i}"' in html and "csrf" not in i and i != "next"]
        for field_id in visible:
            assert f'for="{field_id}"' in html, f"{path}: #{field_id} has no label"


def test_our_own_javascript_is_small():
    import gzip

    ours = [p for p in (ROOT / "static").glob("*.js") if not p.name.startswith("htmx-")]
    assert ours, "portal.js is missing"
    assert sum(len(gzip.compress(p.read_bytes(), 9)) for p in ours) <= 10 * 1024


def test_create_app_leaves_the_libraries_as_they_are(app):
    """Issue 13: no library is patched, so an upgrade needs no re-check of our replacements."""
    import wtforms.widgets
    from wtforms.widgets import core

    assert core.html_params.__module__ == "wtforms.widgets.core"
    assert wtforms.widgets.html_params is core.html_params
    assert core.Input.html_params is core.html_params
    assert core.Button.html_params is core.html_params
    assert app.jinja_env.globals["url_for"] == app.url_for  # Flask's own


FIELD = re.compile(r"<(input|select|textarea)\b([^>]*)>")


def page_problems(html: str) -> list[str]:
    """Repeated ids, and fields a screen reader cannot name (no <label for>, no aria-label)."""
    ids = re.findall(r'\sid="([^"]+)"', html)
    problems = [f"id {i!r} {ids.count(i)} times" for i in sorted(set(ids)) if ids.count(i) > 1]
    for tag, attributes in FIELD.findall(html):
        if re.search(r'type="(hidden|submit|button)"', attributes):
            continue
        field_id = re.search(r'\sid="([^"]+)"', attributes)
        named = "aria-label=" in attributes or "aria-labelledby=" in attributes
        if not named and not (field_id and f'for="{field_id.group(1)}"' in html):
            problems.append(f"<{tag}{attributes[:60]}…> has no label")
    return problems


def test_every_page_an_admin_can_open_has_unique_ids_and_labelled_fields(
    app, client, make_user, make_team
):
    from tests.test_two_factor_team import sample_url

    owner = make_user(email="olga@clinic.example", name="Olga Owner")
    make_team(owner, plan="practice", members=[(make_user(email="mads@clinic.example"), "member")])
    client.post("/login", data={"email": "olga@clinic.example", "password": PASSWORD})
    found, pages = {}, 0
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        response = client.get(sample_url(rule))
        if response.status_code == 200 and response.mimetype == "text/html":
            pages += 1
            if problems := page_problems(response.text):
                found[rule.rule] = problems
    assert pages > 20  # the portal's pages, not a sample
    assert found == {}
