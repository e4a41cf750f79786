"""The WSGI entry point for production: `gunicorn 'portal.wsgi:app'`.

A configuration error is one line on stderr, and the worker exits with gunicorn's boot-error
code, so gunicorn stops instead of restarting workers that can never start.
"""

import sys

from portal import create_app
from portal.config import ConfigError

WORKER_BOOT_ERROR = 3  # gunicorn.arbiter.Arbiter.WORKER_BOOT_ERROR

try:
    app = create_app()
except ConfigError as error:
    sys.stderr.write(f"portal: {error.format_message()}\n")
    sys.exit(WORKER_BOOT_ERROR)
