"""The wheel deploys: built from the sources, installed into a fresh venv and run from outside
the checkout exactly as README.md's "Production deployment" says (db upgrade, worker, gunicorn).

PostgreSQL only (`TEST_DATABASE_URL`): the test creates and drops its own database on that server.
The installation takes its dependencies from the package index (pip's cache makes it quick).
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
# What a clean checkout holds, without what building or running leaves behind (a stale build/
# would otherwise put deleted files into the wheel).
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", "instance",
    "test-results", ".ruff_cache", ".pytest_cache", "results",
)  # fmt: skip
STEP_TIMEOUT = 300  # seconds for each build or install step
BOOT_TIMEOUT = 30


def run(command: list, *, timeout: float = STEP_TIMEOUT, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} exited with {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES)
    started = time.monotonic()
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", base / "dist", source])
    print(f"\nwheel built in {time.monotonic() - started:.1f} s")
    (built,) = (base / "dist").glob("clinic_teams_portal-*.whl")
    return built


def expected_files() -> set[str]:
    """What the app needs, by its path in the wheel: code, templates, static files, migrations
    and translations (devtools/, development-only, is outside these folders)."""

    def files(folder: str):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                yield path.relative_to(ROOT / folder).as_posix()

    code = {
        f"portal/{name}" for name in files("portal") if name.endswith((".py", ".mo", ".po", ".pot"))
    }
    templates = {
        f"portal/templates/{name}"
        for name in files("templates")
        if name.endswith((".html", ".txt"))
    }
    static = {f"portal/static/{name}" for name in files("static")}
    migrations = {f"portal/migrations/{name}" for name in files("migrations")}
    return code | templates | static | migrations


def test_wheel_holds_what_the_app_needs_and_no_dev_tools(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "portal/__init__.py",
        "portal/templates/auth/login.html",
        "portal/static/portal.css",
        "portal/migrations/env.py",
        "portal/migrations/alembic.ini",
        "portal/migrations/script.py.mako",
        "portal/migrations/versions/0001_accounts_subscriptions_stripe_events_.py",
        "portal/translations/da/LC_MESSAGES/messages.mo",
    } <= names
    missing = sorted(expected_files() - names)
    assert not missing, f"not in the wheel (see [tool.setuptools] in pyproject.toml): {missing}"
    # Development code (devtools/: local Stripe, demo data, /dev pages) stays in the checkout.
    top = {name.split("/")[0] for name in names}
    assert {name for name in top if not name.endswith(".dist-info")} == {"portal"}
    assert not [name for name in names if "localstripe" in name or "/dev/" in name]
    top_level = next(name for name in names if name.endswith(".dist-info/top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["portal"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def empty_database():
    """A new, empty database on the server of TEST_DATABASE_URL, dropped afterwards."""
    server = make_url(os.environ["TEST_DATABASE_URL"]).set(drivername="postgresql")
    admin = server.set(database="postgres").render_as_string(hide_password=False)
    name = f"wheel_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def test_installed_wheel_migrates_works_and_serves(wheel, empty_database, tmp_path):
    venv = tmp_path / "venv"
    started = time.monotonic()
    run([sys.executable, "-m", "venv", venv])
    run([venv / "bin" / "python", "-m", "pip", "install", "-q", wheel])
    print(f"\nfresh venv with the wheel installed in {time.monotonic() - started:.1f} s")

    # Outside the checkout, with production settings only: nothing from the test run leaks in.
    workdir = tmp_path / "srv"
    workdir.mkdir()
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("FLASK_") and key not in {"DATABASE_URL", "PYTHONPATH", "VIRTUAL_ENV"}
    }
    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        DATABASE_URL=empty_database,
        FLASK_SECRET_KEY=secrets.token_hex(32),
        FLASK_TOTP_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        FLASK_STRIPE_API_KEY="sk_test_x",
        FLASK_STRIPE_WEBHOOK_SECRET="whsec_x",
        FLASK_PUBLIC_URL=f"http://127.0.0.1:{port}",
        FLASK_MAIL_SERVER="127.0.0.1",
        FLASK_RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/15",
    )
    bin_ = venv / "bin"

    where = run(
        [bin_ / "python", "-c", "import portal; print(portal.__file__)"], cwd=workdir, env=env
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    dev = [
        bin_ / "python",
        "-c",
        "import importlib.util; print(importlib.util.find_spec('devtools'))",
    ]
    assert run(dev, cwd=workdir, env=env).stdout.strip() == "None"
    commands = run([bin_ / "flask", "--app", "portal", "--help"], cwd=workdir, env=env).stdout
    assert "worker" in commands and "seed-demo" not in commands
    assert not [line for line in commands.splitlines() if line.split()[:1] == ["dev"]]

    run([bin_ / "flask", "--app", "portal", "db", "upgrade"], cwd=workdir, env=env, timeout=120)
    run([bin_ / "flask", "--app", "portal", "worker", "--once"], cwd=workdir, env=env, timeout=60)
    # The instance folder is the working directory's, never inside site-packages.
    assert (workdir / "instance").is_dir()
    assert not list(venv.glob("lib/python*/site-packages/instance"))
    assert not list(venv.glob("lib/python*/site-packages/portal/instance"))

    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [bin_ / "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", "portal.wsgi:app"],
            cwd=workdir,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + BOOT_TIMEOUT
        while True:
            assert server.poll() is None, f"gunicorn exited with {server.returncode}"
            try:
                status, body = get(f"{base}/healthz")
                break
            except OSError:
                assert time.monotonic() < deadline, f"gunicorn did not answer in {BOOT_TIMEOUT} s"
                time.sleep(0.2)
        assert status == 200, body
        status, body = get(f"{base}/login")
        assert status == 200, body
        assert "<form" in body and 'name="password"' in body
        for asset in ("portal.css", "htmx-2.0.11.min.js"):
            status, body = get(f"{base}/static/{asset}")
            assert status == 200 and body, asset
        assert get(f"{base}/dev/mailbox")[0] == 404
    except BaseException:
        print(f"--- gunicorn output\n{log.read_text(errors='replace')}", file=sys.stderr)
        raise
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=5)
