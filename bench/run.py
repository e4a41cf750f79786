"""Benchmark the team page against a minimal page of the same stack (see bench/README.md).

Seeds teams of 10, 100, 1,000 and 10,000 members (with pending invitations and audit rows),
serves the portal and the minimal page each under gunicorn (2 sync workers), logs in as the
team's owner, and loads both pages with wrk on loopback, alternating the two servers, several
rounds.
Usage: .venv/bin/python bench/run.py [--rounds 3] [--duration 10] [--sizes 10,100,1000,10000]
    [--database-url postgresql://postgres@127.0.0.1:5432/portal_bench]
The database is emptied first (its public schema is dropped): give it one of its own.
"""

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import requests
from sqlalchemy import create_engine, event, text

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PASSWORD = "bench password 2026"
PG_BENCH = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/portal_bench")
# Flask-Login's strong session protection binds the session to the User-Agent: use one.
AGENT = {"User-Agent": "portal-bench"}
ENV = {
    "FLASK_SECRET_KEY": "bench-secret",
    "FLASK_STRIPE_API_KEY": "sk_test_bench",
    "FLASK_STRIPE_WEBHOOK_SECRET": "whsec_bench",
    # Production requires the two-step sign-in's key (a Fernet key: 32 bytes, base64).
    "FLASK_TOTP_ENCRYPTION_KEYS": "cG9ydGFsLWJlbmNoLXRvdHAta2V5LW5vdC1zZWNyZXQ=",
    "FLASK_PUBLIC_URL": "https://localhost",
    # wrk and requests reach gunicorn as 127.0.0.1:port, Flask's test client as localhost.
    "FLASK_TRUSTED_HOSTS": "localhost,127.0.0.1",
    "FLASK_MAIL_ENABLED": "false",
    # Rate limits count only the bench's one login per size.
    "FLASK_RATELIMIT_ALLOW_MEMORY": "true",
}


def database_url(url: str) -> str:
    """The bench database, emptied: its own database, so no other one is touched."""
    try:
        engine = create_engine("postgresql+psycopg://" + url.split("://", 1)[1])
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        return url
    except Exception as error:  # noqa: BLE001 - fall back to SQLite when PostgreSQL is absent
        print(f"PostgreSQL not available ({error}); using SQLite")
        path = ROOT / "bench" / "results" / "bench.sqlite3"
        path.parent.mkdir(exist_ok=True)
        path.unlink(missing_ok=True)
        return f"sqlite:///{path}"


def seed(url: str, sizes: list[int]) -> dict[int, tuple[int, str]]:
    """Create the schema and one team per size; return {size: (team id, owner email)}."""
    os.environ.update(ENV, DATABASE_URL=url)
    sys.path.insert(0, str(ROOT))
    from flask_migrate import upgrade

    from portal import create_app
    from portal.audit.models import AuditEvent
    from portal.auth import service as auth
    from portal.billing.models import Subscription
    from portal.clock import utcnow
    from portal.extensions import db
    from portal.invitations.models import Invitation
    from portal.teams.models import Membership, Team

    app = create_app()
    teams = {}
    with app.app_context():
        upgrade()
        hashed = auth.hasher().hash(PASSWORD)
        now = utcnow()
        for size in sizes:
            owner = auth.create_user(
                name=f"Owner {size}",
                email=f"owner{size}@bench.example",
                password=PASSWORD,
                locale="en",
                now=now,
                verified=True,
            )
            subscription = Subscription(
                stripe_subscription_id=f"sub_bench_{size}",
                stripe_customer_id=f"cus_bench_{size}",
                user=owner,
                plan="practice",
                interval="month",
                status="active",
                quantity=size,
            )
            team = Team(name=f"Bench team {size}", owner=owner, subscription=subscription)
            db.session.add_all([subscription, team])
            db.session.flush()
            db.session.add(Membership(team=team, user=owner, role="admin", created_at=now))
            rows = [
                {
                    "email": f"m{n}-{size}@bench.example",
                    "name": f"Member {n:04d}",
                    "password_hash": hashed,
                    "session_version": 1,
                    "created_at": now,
                    "email_verified_at": now,
                    # Last active over the past weeks, and some not since it was recorded.
                    "last_seen_at": None if n % 6 == 5 else now - timedelta(hours=7 * n),
                }
                for n in range(size - 1)
            ]
            if rows:
                db.session.execute(
                    text(
                        "INSERT INTO users (email, name, password_hash, session_version, created_at, "
                        "email_verified_at, last_seen_at) VALUES (:email, :name, :password_hash, "
                        ":session_version, :created_at, :email_verified_at, :last_seen_at)"
                    ),
                    rows,
                )
                ids = (
                    db.session.execute(
                        text("SELECT id FROM users WHERE email LIKE :p"),
                        {"p": f"m%-{size}@bench.example"},
                    )
                    .scalars()
                    .all()
                )
                roles = ["member", "member", "member", "assistant", "admin"]
                db.session.execute(
                    Membership.__table__.insert(),
                    [
                        {
                            "team_id": team.id,
                            "user_id": uid,
                            "role": roles[i % 5],
                            # Joined over the past years: dates differ, as in a real team.
                            "created_at": now - timedelta(hours=29 * (i + 1)),
                        }
                        for i, uid in enumerate(ids)
                    ],
                )
            db.session.execute(
                Invitation.__table__.insert(),
                [
                    {
                        "team_id": team.id,
                        "email": f"p{n}-{size}@bench.example",
                        "role": "member",
                        "token_hash": f"{size:08d}{n:056d}",
                        "status": "pending",
                        "invited_by_id": owner.id,
                        "created_at": now - timedelta(hours=n % 700),
                        "sent_at": now - timedelta(hours=n % 700),
                        "expires_at": now - timedelta(hours=n % 700) + timedelta(days=30),
                    }
                    for n in range(max(3, size // 10))
                ],
            )
            db.session.execute(
                AuditEvent.__table__.insert(),
                [
                    {
                        "team_id": team.id,
                        "actor_id": owner.id,
                        "actor_name": owner.name,
                        "action": "invitation.sent",
                        "target": f"p{n}@bench.example",
                        "details": {},
                        "created_at": now - timedelta(minutes=37 * n),
                    }
                    for n in range(2 * size)
                ],
            )
            db.session.commit()
            teams[size] = (team.id, owner.email)
    # Fresh statistics, as autovacuum would have after a while: both pages' plans depend on them.
    if url.startswith("postgresql"):
        engine = create_engine("postgresql+psycopg://" + url.split("://", 1)[1])
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
        engine.dispose()
    # Outside the seeding app context, so each request gets its own (as under gunicorn).
    statements = {size: count_statements(app, email) for size, (_, email) in teams.items()}
    return teams, statements


def count_statements(app, email) -> int:
    from portal.extensions import db

    seen = []
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    client.post("/login", data={"email": email, "password": PASSWORD}, base_url="https://localhost")
    with app.app_context():
        engine = db.engine
    listener = lambda *args: seen.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    response = client.get("/settings/teams", base_url="https://localhost")
    event.remove(engine, "before_cursor_execute", listener)
    assert response.status_code == 200, response.status_code
    return len(seen)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(app_spec: str, env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", app_spec],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            requests.get(base + "/healthz", timeout=1)
            return process, base
        except requests.RequestException:
            time.sleep(0.05)
    raise RuntimeError(f"{app_spec} did not start")


def login_cookie(base: str, email: str) -> str:
    # The session cookie is Secure (production settings), so carry it by hand over loopback.
    page = requests.get(base + "/login", headers=AGENT)
    cookie = page.headers["Set-Cookie"].split(";", 1)[0]
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
    response = requests.post(
        base + "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token},
        headers={"Cookie": cookie, **AGENT},
        allow_redirects=False,
    )
    assert response.status_code == 303, response.status_code
    return response.headers["Set-Cookie"].split(";", 1)[0]


def fresh_cookie(url: str, cookie: str) -> str:
    """The cookie a browser would hold now: wrk replays one cookie, while a browser keeps the
    session cookie a page sets (the new CSRF token after login, the last-seen time that is
    renewed once a minute). Without this, every request of a long run would rewrite it."""
    response = requests.get(url, headers={"Cookie": cookie, **AGENT}, allow_redirects=False)
    assert response.status_code == 200, response.status_code  # not a login redirect
    new = response.headers.get("Set-Cookie")
    return new.split(";", 1)[0] if new else cookie


def wrk(url: str, cookie: str | None, duration: int) -> dict:
    command = [
        "wrk",
        "-t1",
        "-c4",
        f"-d{duration}s",
        "--latency",
        # A slow page (a large team's) counts as slow, not as failed: wrk's default is 2 s.
        "--timeout",
        "60s",
        "-H",
        "User-Agent: portal-bench",
        url,
    ]
    if cookie:
        command[1:1] = ["-H", f"Cookie: {cookie}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def percentile(p):
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert not non2xx, f"{url}: {non2xx.group(0)}"
    timeouts = re.search(r"timeout (\d+)", out)
    assert not timeouts or timeouts.group(1) == "0", (
        f"{url}: {timeouts.group(0)} requests timed out"
    )
    return {"rps": rps, "p50": percentile(50), "p99": percentile(99)}


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):,.1f} ({min(values):,.1f}–{max(values):,.1f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--sizes", default="10,100,1000,10000")
    parser.add_argument("--database-url", default=PG_BENCH)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    sizes = [int(s) for s in args.sizes.split(",")]
    url = database_url(args.database_url)
    started = time.perf_counter()
    teams, statements = seed(url, sizes)
    print(f"seeded in {time.perf_counter() - started:.1f} s", flush=True)
    portal, portal_base = serve("portal:create_app()", {**ENV, "DATABASE_URL": url})
    minimal, minimal_base = serve("bench.minimal_app:app", {"BENCH_DATABASE_URL": url})
    results = {size: {"portal": [], "minimal": []} for size in sizes}
    try:
        for size in sizes:
            team_id, email = teams[size]
            cookie = login_cookie(portal_base, email)
            targets = {
                "portal": (portal_base + "/settings/teams", cookie),
                "minimal": (f"{minimal_base}/team/{team_id}", None),
            }
            sizes_html = {}
            for name, (u, c) in targets.items():
                check = requests.get(
                    u, headers={**AGENT, **({"Cookie": c} if c else {})}, allow_redirects=False
                )
                assert check.status_code == 200, (name, check.status_code)  # not a login redirect
                sizes_html[name] = len(check.content)
            for u, c in targets.values():  # warm up both
                wrk(u, c and fresh_cookie(u, c), 2)
            for round_no in range(args.rounds):
                order = ("portal", "minimal") if round_no % 2 == 0 else ("minimal", "portal")
                for name in order:
                    u, c = targets[name]
                    results[size][name].append(wrk(u, c and fresh_cookie(u, c), args.duration))
            results[size]["bytes"] = sizes_html
            print(f"N={size}: done", flush=True)
    finally:
        for process in (portal, minimal):
            process.terminate()
            process.wait(10)
    report(results, statements, url, args)


def report(results, statements, url, args) -> None:
    lines = [
        f"Machine: {platform.node()} · {platform.processor() or platform.machine()} · "
        f"{os.cpu_count()} cores · Python {platform.python_version()} · database "
        f"{'PostgreSQL' if url.startswith('postgresql') else 'SQLite'} · "
        f"{args.rounds} rounds × {args.duration} s per page and size, alternating",
        "",
        "| N | page | req/s median (min–max) | p50 ms | p99 ms | SQL statements | HTML bytes | req/s vs minimal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, data in results.items():
        base = statistics.median(r["rps"] for r in data["minimal"])
        for name in ("portal", "minimal"):
            runs = data[name]
            ratio = statistics.median(r["rps"] for r in runs) / base
            lines.append(
                f"| {size:,} | {'team page' if name == 'portal' else 'minimal page'} | "
                f"{summary([r['rps'] for r in runs])} | {summary([r['p50'] for r in runs])} | "
                f"{summary([r['p99'] for r in runs])} | "
                f"{statements[size] if name == 'portal' else 1} | {data['bytes'][name]:,} | "
                f"{ratio:.0%} |"
            )
    most = max(statements.values())
    lines += [
        "",
        f"SQL statements per team page: {', '.join(f'{n:,}: {c}' for n, c in statements.items())}"
        f" (target at most 6 at every N: {'met' if most <= 6 else 'NOT met'})",
    ]
    text_report = "\n".join(lines)
    print(text_report)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.md").write_text(text_report + "\n")
    (out / "latest.json").write_text(json.dumps({"results": results, "statements": statements}))


if __name__ == "__main__":
    main()
