# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ONLY ?=
MSG ?= schema change
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends
# pytest exits 5 when it collected no test (e.g. a -k filter matched nothing): not a failure.
PYTEST := $(BIN)/pytest $(PYTEST_ARGS); status=$$?; [ $$status -ne 5 ] || status=0; exit $$status

.PHONY: install run demo lint test browser postgres node forge migration bench soak clean

# The shared first step: the virtualenv with the project (editable) and its test extras.
install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Web + worker + embedded Valkey on SQLite (instance/), on http://localhost:$${PORT:-8000}.
run: install
	@echo "Inflow: http://localhost:$${PORT:-8000}. No Atlassian site yet? Stop this and run" \
	  "'make demo' to try it on a sandbox site at http://localhost:$${PORT:-8000}/demo"
	$(BIN)/inflow serve

# Inflow installed into a sandbox site of real public data: http://localhost:$${PORT:-8000}/demo.
demo: install
	$(BIN)/inflow demo

# Debian's Chromium for the browser tests (Playwright cannot download browsers here).
browser:
	@command -v chromium >/dev/null || { command -v apt-get >/dev/null && \
	  (apt-get update -qq && $(APT_INSTALL) chromium >/dev/null); } || true

# PostgreSQL 15 for pg_virtualenv, which gives the test run a throwaway cluster.
postgres:
	@test -x /usr/lib/postgresql/15/bin/postgres && command -v pg_virtualenv >/dev/null || \
	  { command -v apt-get >/dev/null && \
	    (apt-get update -qq && $(APT_INSTALL) postgresql-15 postgresql-common >/dev/null); } || true

# npm packages the tests use: Atlassian's atlassian-jwt (cross-check), all.js and axe-core.
node: tests/node/node_modules/.installed

tests/node/node_modules/.installed: tests/node/package.json
	cd tests/node && npm install --no-audit --no-fund --silent
	touch $@

# Forge: the Custom UI bundles (forge/static/*/build) and forge/manifest.yml for INFLOW_BASE_URL.
forge: install
	cd forge && npm install --no-audit --no-fund --silent && npm run build --silent
	$(BIN)/inflow forge-manifest

# ruff (rules in pyproject.toml) over every Python file, mypy over connect/ plugin/ jobs/;
# both run, so one failing does not hide what the other finds.
lint: install
	@status=0; $(BIN)/ruff check . || status=1; $(BIN)/mypy || status=1; exit $$status

# Lint first, then the whole suite; PostgreSQL tests run inside a throwaway cluster from
# pg_virtualenv.
test: lint browser postgres node
	@if command -v pg_virtualenv >/dev/null; then \
	  pg_virtualenv -t -v 15 -- sh -c '$(PYTEST)'; \
	else \
	  echo "WARNING: pg_virtualenv not found, PostgreSQL tests will be SKIPPED"; \
	  sh -c '$(PYTEST)'; \
	fi

# A new Alembic revision from the models, diffed against a scratch database at head:
#   make migration MSG="add question reminders"
migration: install
	@scratch=$$(mktemp -d) && export DATABASE_URL=sqlite:///$$scratch/migration.db && \
	  $(BIN)/alembic -c plugin/migrations/alembic.ini upgrade head && \
	  $(BIN)/alembic -c plugin/migrations/alembic.ini revision --autogenerate -m "$(MSG)"; \
	  status=$$?; rm -rf $$scratch; exit $$status

bench: install
	$(BIN)/python -m bench $(if $(ONLY),--only $(ONLY),)

soak: install
	@pg_virtualenv -t -v 15 -- $(BIN)/python -m tests.soak

clean:
	rm -rf $(VENV) tests/node/node_modules instance/*.db instance/valkey
