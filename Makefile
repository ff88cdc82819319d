# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ONLY ?=

.PHONY: install run test test-fast browser node bench soak clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: install
	$(BIN)/inflow serve

# Debian's Chromium for the browser tests (Playwright cannot download browsers here).
browser:
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); } || true

# npm packages the tests use: Atlassian's atlassian-jwt (cross-check) and axe-core.
node: tests/node/node_modules/.installed

tests/node/node_modules/.installed: tests/node/package.json
	cd tests/node && npm install --no-audit --no-fund --silent
	touch $@

# The whole suite; PostgreSQL tests run inside a throwaway cluster from pg_virtualenv.
test: install browser node
	@if command -v pg_virtualenv >/dev/null; then \
	  pg_virtualenv -v 15 -- $(BIN)/pytest $(PYTEST_ARGS); \
	else \
	  echo "WARNING: pg_virtualenv not found, PostgreSQL tests will be SKIPPED"; \
	  $(BIN)/pytest $(PYTEST_ARGS); \
	fi

bench: install
	$(BIN)/python -m bench $(if $(ONLY),--only $(ONLY),)

soak: install
	@pg_virtualenv -v 15 -- $(BIN)/python -m tests.soak

clean:
	rm -rf $(VENV) tests/node/node_modules instance/*.db
