# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv demo test lint format clean

# Create or refresh the virtual environment: torch==2.13.0 first (the CPU wheel these machines
# have), then the package with its development extras.
venv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'

demo: venv
	$(BIN)/rbmvae train rbm --hidden 100 --epochs 5 --out runs/demo/rbm-h100 --force --quiet
	$(BIN)/rbmvae inpaint --model runs/demo/rbm-h100 --missing 0.5 --out runs/demo/inpaint.png
	$(BIN)/rbmvae sample --model runs/demo/rbm-h100 --out runs/demo/samples.png

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: venv lint
	$(BIN)/python -m pytest

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
