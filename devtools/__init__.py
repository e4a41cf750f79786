"""Development-only tools of a checkout: the local Stripe server, demo data, the `/dev` pages.

Not in the wheel (pyproject.toml packages only `portal`): a checkout runs from its root, which
`python -m`, `flask --app portal` and pytest put on `sys.path`. `portal.create_app` calls
`init_app` in development mode only.
"""

from pathlib import Path

from flask import Flask

# The checkout's root: the working directory of the processes `dev serve` and the tests start,
# so that they import this package too.
ROOT = Path(__file__).resolve().parent.parent


def init_app(app: Flask) -> None:
    # Here, not at the top: they load the portal's services, which `devtools.ROOT` alone (the
    # tests' conftest) does not need.
    from devtools.seed import seed_demo_command
    from devtools.serve import dev_cli
    from devtools.views import bp

    app.register_blueprint(bp)
    app.cli.add_command(dev_cli)
    app.cli.add_command(seed_demo_command)
