# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv system-deps demo test lint format clean bench docs results

# The virtual environment: torch==2.13.0 first (the CPU wheel these machines have), then the
# package with its development extras. It is built once per content of pyproject.toml (and the
# torch pin): the stamp file's name holds their hash, so an environment that is already current
# is left as it is, and a changed pyproject.toml rebuilds it (`make clean` removes it).
TORCH := torch==2.13.0
VENV_KEY := $(shell $(PYTHON) -c "import hashlib; print(hashlib.sha256(open('pyproject.toml', 'rb').read() + b'$(TORCH)').hexdigest()[:16])")
STAMP := $(VENV)/.stamp-$(VENV_KEY)

venv: $(STAMP)

$(STAMP):
	rm -f $(VENV)/.stamp-*
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(TORCH)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# Debian's chromium for the browser tests (report.html, explore.html) and Debian's postgresql for
# the tests of `rbmvae tune` on a PostgreSQL server (started by the test itself); skipped where
# apt-get is not available to this user (those tests then skip, unless RBMVAE_REQUIRE_BROWSER=1
# or RBMVAE_REQUIRE_POSTGRES=1).
system-deps:
	@if command -v chromium >/dev/null 2>&1; then echo "chromium: $$(command -v chromium)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "chromium not installed and cannot install it here: browser tests will skip"; fi
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then echo "postgresql: $$(ls -d /usr/lib/postgresql/*/bin | tail -1)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "postgresql not installed and cannot install it here: its tune tests will skip"; fi

# The main job on the embedded sample: RBMs 20/100/500, VAEs z = 2/8/16, evaluation, figures,
# runs/quick/report.html and the interactive runs/quick/explore.html.
demo: venv
	$(BIN)/rbmvae reproduce --profile quick --out runs/quick
	$(BIN)/rbmvae explore --run runs/quick --out runs/quick/explore.html

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The site is built first: tests/test_docs_site.py opens it in chromium. The tests run in one
# worker process per CPU core (pytest-xdist; TEST_WORKERS=0 runs them in this process), each
# with one torch thread (tests/conftest.py).
TEST_WORKERS ?= auto
test: venv system-deps lint docs
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

# Speed against the hardware's floor, scikit-learn's BernoulliRBM and a plain PyTorch VAE loop,
# how cost grows with the model, and quality per second against scikit-learn at equal budgets,
# on full MNIST (MNIST_DIR, default ../shared/data/mnist where it exists, else the download):
# writes benchmarks/RESULTS.md and its plots (about an hour on 2 cores; needs the bench extra:
# pip install -e '.[bench]'). BENCH_ARGS=--quick for a smoke run of the first part.
MNIST_DIR ?= $(wildcard ../shared/data/mnist)
DATA_ARGS := --dataset mnist $(if $(MNIST_DIR),--data-dir $(MNIST_DIR))
bench:
	$(BIN)/python benchmarks/run.py $(DATA_ARGS) $(BENCH_ARGS)
	$(BIN)/python benchmarks/scaling.py $(DATA_ARGS)
	$(BIN)/python benchmarks/equal_budget.py $(DATA_ARGS) run

# The documentation site, offline, into build/site (open build/site/index.html from disk):
# MathJax and iframe-worker (for the search on file://) from npm into build/npm, then
# `mkdocs build --strict` (a broken link, a missing docstring or a warning fails it), which
# executes the tutorial notebook on one torch thread unless OMP_NUM_THREADS says otherwise (on
# a busy 2-core machine two threads contend). About three minutes on 2 cores.
NPM_ASSETS := mathjax@3.2.2 iframe-worker@1.0.4
docs: venv
	@if [ "$$(cat build/npm/.installed 2>/dev/null)" != "$(NPM_ASSETS)" ]; then \
	  rm -rf build/npm && mkdir -p build/npm && \
	  npm install --prefix build/npm --no-save --no-audit --no-fund --loglevel=error $(NPM_ASSETS) && \
	  echo "$(NPM_ASSETS)" > build/npm/.installed; fi
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The results tables of README.md and docs/results.md, from the runs' metrics.json committed
# under docs/runs/ (`rbmvae results`; blocks whose run has no metrics.json are left as they are).
RUN_METRICS := $(foreach run,$(wildcard docs/runs/*/metrics.json),$(notdir $(patsubst %/,%,$(dir $(run))))=$(run))
results: venv
	$(BIN)/rbmvae results $(RUN_METRICS) --write README.md --write docs/results.md

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
