"""Time and profile the team page in one process, against the minimal page (see bench/README.md).

Seeds one team of N members as bench/run.py does, then requests the team page (as its owner)
and the minimal page through Flask's test client: no wrk, no gunicorn, no network, so the
numbers move less than the benchmark's and a profile shows where a request's time goes.
Usage: .venv/bin/python bench/inprocess.py [--size 10] [--requests 300] [--profile]
    [--database-url postgresql://postgres@127.0.0.1:5432/portal_bench]
"""

import argparse
import cProfile
import os
import pstats
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, text  # noqa: E402

from bench.run import AGENT, ENV, PASSWORD, PG_BENCH, database_url, seed  # noqa: E402

HTTPS = {"base_url": "https://localhost", "headers": AGENT}


def seeded_teams(url: str, size: int) -> dict[int, tuple[int, str]]:
    """The team of this size that an earlier run seeded (so callgrind need not seed)."""
    os.environ.update(ENV, DATABASE_URL=url)
    engine = create_engine("postgresql+psycopg://" + url.split("://", 1)[1])
    with engine.connect() as conn:
        team_id = conn.execute(
            text("SELECT id FROM teams WHERE name = :name"), {"name": f"Bench team {size}"}
        ).scalar_one()
    engine.dispose()
    return {size: (team_id, f"owner{size}@bench.example")}


def portal_client(app, email):
    client = app.test_client()
    page = client.get("/login", **HTTPS)
    token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page.data).group(1)
    response = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token.decode()},
        base_url=HTTPS["base_url"],
        headers={**AGENT, "Referer": "https://localhost/login"},  # Flask-WTF's HTTPS check
    )
    assert response.status_code == 303, response.status_code
    assert client.get("/settings/teams", **HTTPS).status_code == 200
    return client


def per_request_ms(get, count: int) -> float:
    """This process's CPU time per request in milliseconds, the least of five batches.

    CPU time rather than wall-clock time: other processes on the machine then slow a batch
    down less, and the least of several batches is the one they disturbed least. The database
    server's time is not in it (the minimal page's query is the cheaper one)."""
    for _ in range(20):
        get()
    batches = []
    for _ in range(5):
        started = time.process_time()
        for _ in range(count // 5):
            get()
        batches.append((time.process_time() - started) * 1000 / (count // 5))
    return min(batches)


def callgrind_dump(label: str) -> None:
    """Ask callgrind (when this process runs under it) to write its counters out and zero them.

    callgrind_control waits for the answer, which valgrind gives only when this process runs
    Python code again: poll with short sleeps instead of blocking in wait()."""
    control = subprocess.Popen(
        ["callgrind_control", "--dump=" + label, str(os.getpid())], stdout=subprocess.DEVNULL
    )
    while control.poll() is None:
        time.sleep(0.01)


def instructions_per_request(get, label: str, count: int) -> None:
    """Under callgrind: dump the counters around `count` and 3 * `count` requests; the
    difference of the two dumps, over 2 * `count`, is one request without the dumps' own cost.
    Read the totals with bench/callgrind_totals.py."""
    for _ in range(30):
        get()
    for size in (count, 3 * count):
        callgrind_dump(f"{label}-start-{size}")
        for _ in range(size):
            get()
        callgrind_dump(f"{label}-{size}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    parser.add_argument("--profile-out", help="also save the profile there (for pstats)")
    parser.add_argument("--database-url", default=PG_BENCH)
    parser.add_argument(
        "--callgrind", action="store_true", help="run under callgrind: dump counters instead"
    )
    parser.add_argument("--no-seed", action="store_true", help="use the teams already seeded")
    args = parser.parse_args()
    if args.no_seed:
        url, teams = args.database_url, seeded_teams(args.database_url, args.size)
    else:
        url = database_url(args.database_url)
        teams, _statements = seed(url, [args.size])
    team_id, email = teams[args.size]

    from portal import create_app

    app = create_app()
    client = portal_client(app, email)
    os.environ["BENCH_DATABASE_URL"] = url
    from bench.minimal_app import app as minimal

    minimal_client = minimal.test_client()

    def team_page():
        response = client.get("/settings/teams", **HTTPS)
        assert response.status_code == 200

    def minimal_page():
        assert minimal_client.get(f"/team/{team_id}").status_code == 200

    if args.callgrind:
        instructions_per_request(team_page, "portal", 10)
        instructions_per_request(minimal_page, "minimal", 10)
        return
    portal_ms = per_request_ms(team_page, args.requests)
    minimal_ms = per_request_ms(minimal_page, args.requests)
    print(
        f"N={args.size}: team page {portal_ms:.2f} ms, minimal page {minimal_ms:.2f} ms, "
        f"minimal/team {minimal_ms / portal_ms:.0%}"
    )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.requests):
            team_page()
        profiler.disable()
        if args.profile_out:
            profiler.dump_stats(args.profile_out)
        stats = pstats.Stats(profiler).strip_dirs()
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats(60)


if __name__ == "__main__":
    main()
