# Two commands on a fresh machine:  `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean browser postgres screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dev,rocksdb]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/crm-attribution demo

test: $(STAMP) browser postgres
	$(BIN)/python -m pytest -v --timeout=900 --durations=30

# Debian's chromium for the dashboard tests (Playwright drives it; it downloads no browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# PostgreSQL server binaries (initdb, pg_ctl) for the SQL sink tests; the tests start a server.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		echo "installing Debian's postgresql for the SQL sink tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

bench: $(STAMP)
	$(BIN)/pip install --quiet 'ChannelAttribution==2.2.5' matplotlib pandas
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_stream.py

screenshots: $(STAMP) browser
	$(BIN)/python docs/dashboard/make_screenshots.py

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy attribution stream crm_attribution

clean:
	rm -rf $(VENV) build *.egg-info
