"""Where the app's folders are, in a checkout and in an installed wheel.

A checkout keeps `templates/`, `static/` and `migrations/` at the top level (DESIGN.md §8); the
wheel carries them inside the package as `portal/templates`, `portal/static` and
`portal/migrations` (`[tool.setuptools]` in pyproject.toml). The instance folder is never
inside the package: `FLASK_INSTANCE_PATH` if set, else `instance/` of the checkout, else
`instance/` of the working directory (an installed wheel).
"""

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
# The wheel has portal/templates; a checkout (also under `pip install -e .`) has not.
INSTALLED = (PACKAGE / "templates").is_dir()
BASE = PACKAGE if INSTALLED else PACKAGE.parent

TEMPLATES = BASE / "templates"
STATIC = BASE / "static"
MIGRATIONS = BASE / "migrations"


def instance_path() -> str:
    configured = os.environ.get("FLASK_INSTANCE_PATH")
    if configured:
        return str(Path(configured).resolve())
    return str((Path.cwd() if INSTALLED else PACKAGE.parent) / "instance")
