# Two commands on a fresh machine:  `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,dev,rocksdb]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/crm-attribution demo

test: $(STAMP)
	$(BIN)/python -m pytest -v --timeout=900

bench: $(STAMP)
	$(BIN)/pip install --quiet 'ChannelAttribution==2.2.5' matplotlib pandas
	$(BIN)/python bench/bench_engine.py
	$(BIN)/python bench/bench_stream.py

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy attribution stream config crm_attribution

clean:
	rm -rf $(VENV) build *.egg-info
