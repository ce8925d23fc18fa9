# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv system-deps demo test lint format clean

# Create or refresh the virtual environment: torch==2.13.0 first (the CPU wheel these machines
# have), then the package with its development extras.
venv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'

# Debian's chromium for the browser tests (report.html, explore.html); skipped where apt-get is
# not available to this user (the browser tests then skip, unless RBMVAE_REQUIRE_BROWSER=1).
system-deps:
	@if command -v chromium >/dev/null 2>&1; then echo "chromium: $$(command -v chromium)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium not installed and cannot install it here: browser tests will skip"; fi

demo: venv
	$(BIN)/rbmvae train rbm --hidden 100 --epochs 5 --out runs/demo/rbm-h100 --force --quiet
	$(BIN)/rbmvae inpaint --model runs/demo/rbm-h100 --missing 0.5 --out runs/demo/inpaint.png
	$(BIN)/rbmvae sample --model runs/demo/rbm-h100 --out runs/demo/samples.png

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: venv system-deps lint
	$(BIN)/python -m pytest

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
