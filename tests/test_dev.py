"""Development mode takes its pages and commands from the checkout's devtools package; the
portal package itself holds no development code (tests/test_wheel.py checks the wheel)."""

import sys
from pathlib import Path

import pytest

from portal import create_app
from tests.test_app import PRODUCTION

ROOT = Path(__file__).resolve().parent.parent


def test_development_mode_has_the_dev_pages_and_commands(app):
    assert "dev.mailbox" in app.view_functions
    assert {"dev", "seed-demo"} <= set(app.cli.list_commands(None))
    assert "serve" in app.cli.get_command(None, "dev").commands


def test_production_has_no_dev_pages_or_commands(monkeypatch):
    monkeypatch.delenv("FLASK_PORTAL_DEV", raising=False)
    monkeypatch.setitem(sys.modules, "devtools", None)  # any import of it would fail
    app = create_app(PRODUCTION)
    assert not [endpoint for endpoint in app.view_functions if endpoint.startswith("dev.")]
    assert not {"dev", "seed-demo"} & set(app.cli.list_commands(None))


def test_development_mode_without_devtools_says_so(app, monkeypatch):
    monkeypatch.setitem(sys.modules, "devtools", None)  # as in an installed wheel
    with pytest.raises(RuntimeError, match="devtools"):
        create_app({**app.config, "PORTAL_DEV": True})


def test_the_portal_package_imports_devtools_only_to_register_it():
    users = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "portal").rglob("*.py")
        if "devtools" in path.read_text()
    ]
    assert users == ["portal/__init__.py"]
