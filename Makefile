# The two commands of the README: `make run` and `make test`. Both build .venv/ from
# nothing (pinned requirements.lock) the first time and reuse it afterwards.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit integration e2e install clean browser bench deploy-tools

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The trading screen's front-end dependencies (npm registry, pinned by the lockfile);
# reinstalled when the lockfile changes. The stamp lives inside node_modules, so
# deleting node_modules also reinstalls.
WEB_STAMP := web/node_modules/.installed

$(WEB_STAMP): web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund
	touch $(WEB_STAMP)

install: $(STAMP) $(WEB_STAMP)

# The browser tests drive Debian's chromium (Playwright never downloads a browser).
browser:
	command -v chromium >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium)

# The deployment tests check docker-compose.yml with Debian's docker-compose (`config`
# needs no engine) and deploy/prometheus/prometheus.yml with promtool (Debian's prometheus).
deploy-tools:
	command -v docker-compose >/dev/null && command -v promtool >/dev/null || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker-compose prometheus)

run: install
	$(BIN)/senex up

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

test: lint typecheck browser deploy-tools
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

integration: install
	$(BIN)/pytest tests/integration

# Every benchmark at quick settings (minutes, not the full runs the README quotes);
# each writes its JSON to bench/results/.
bench: install
	$(BIN)/python bench/eventlog.py --events 20000
	$(BIN)/python bench/simulator.py --seconds 5 --orders 50
	$(BIN)/python bench/strategy.py --runs 50
	$(BIN)/python bench/execution.py --orders 50
	$(BIN)/python bench/gateway.py --seconds 10
	$(BIN)/python bench/greeks.py
	$(BIN)/python bench/memory.py --minutes 2 --sample-s 30

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
