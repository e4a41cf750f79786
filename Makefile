# Clinic Teams portal. `make run` starts everything on embedded defaults; `make test` runs the suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint format translations chromium bench

$(INSTALLED): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

# `make run PORT=5001 STRIPE_PORT=8421` when 5000 or 8420 is taken; links in emails follow PORT.
PORT ?= 5000
STRIPE_PORT ?= 8420

run: $(INSTALLED)
	FLASK_PORTAL_DEV=1 FLASK_PUBLIC_URL=http://127.0.0.1:$(PORT) \
	  FLASK_LOCAL_STRIPE_PORT=$(STRIPE_PORT) $(VENV)/bin/flask --app portal dev serve --port $(PORT)

# Browser tests need Debian's Chromium: installed here when running as root; otherwise they are
# skipped with a notice (and under CI=true a missing browser fails the run).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's chromium for the browser tests..."; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; \
	  else echo "NOTICE: /usr/bin/chromium is missing and cannot be installed: browser tests will be skipped."; fi; \
	fi

test: $(INSTALLED) chromium
	$(PY) -m pytest -q --screenshot only-on-failure --output test-results/playwright $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(INSTALLED)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

translations: $(INSTALLED)
	$(VENV)/bin/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k lazy_ngettext:1,2 --no-location --sort-output -o portal/translations/messages.pot .
	$(VENV)/bin/pybabel update -i portal/translations/messages.pot -d portal/translations --width 100 --ignore-obsolete --no-fuzzy-matching
	$(VENV)/bin/pybabel compile -d portal/translations

bench: $(INSTALLED)
	$(PY) bench/run.py
