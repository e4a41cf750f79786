"""Configuration checked at start-up outside development mode (issue 12, item 6)."""

import os
import subprocess
import sys

import pytest

from portal import create_app
from portal.config import ConfigError, env_value
from tests.test_app import PRODUCTION


@pytest.fixture(autouse=True)
def production(monkeypatch):
    monkeypatch.delenv("FLASK_PORTAL_DEV", raising=False)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("False", False),
        ("false", False),
        ("0", 0),
        ("no", False),
        ("OFF", False),
        ("True", True),
        ("yes", True),
        ("1", 1),
        ("25", 25),
        ('["a", "b"]', ["a", "b"]),
        ("smtp.clinic.example", "smtp.clinic.example"),
    ],
)
def test_environment_values_are_read_as_booleans_numbers_and_lists(text, value):
    assert env_value(text) == value


def test_mail_use_tls_false_from_the_environment_is_false(monkeypatch):
    monkeypatch.setenv("FLASK_MAIL_USE_TLS", "False")
    assert create_app(PRODUCTION).config["MAIL_USE_TLS"] is False


def test_production_needs_a_mail_server_unless_email_is_switched_off():
    with pytest.raises(ConfigError, match="MAIL_SERVER"):
        create_app({**PRODUCTION, "MAIL_SERVER": None})
    assert create_app({**PRODUCTION, "MAIL_SERVER": None, "MAIL_ENABLED": False})


def test_production_refuses_per_process_rate_limits_unless_allowed():
    memory = {**PRODUCTION, "RATELIMIT_ALLOW_MEMORY": False, "RATELIMIT_STORAGE_URI": "memory://"}
    with pytest.raises(ConfigError, match="memory://"):
        create_app(memory)
    redis = {**PRODUCTION, "RATELIMIT_ALLOW_MEMORY": False}
    assert create_app({**redis, "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/13"})


def test_a_missing_setting_is_one_line_naming_it_without_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "portal", "db", "current"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: Missing configuration") and "PUBLIC_URL" in lines[0]
    assert "Traceback" not in result.stderr
