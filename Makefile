# Set-up and entry points. Every target creates (or reuses) the virtual environment first.
#
# The environment lives outside the checkout, keyed on a hash of the requirement files, so a
# fresh clone (CI) reuses it when the requirements did not change: $(VENV_CACHE)/venv-<hash>.
# The project itself is (re)installed in editable mode on every call (a second or two).

PYTHON     ?= python3
VENV_CACHE ?= $(HOME)/.cache/knas-studio
REQ_HASH   := $(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
VENV       := $(VENV_CACHE)/venv-$(REQ_HASH)
ARCHS      ?= 20
DATASET    ?= cifar10
PORT       ?= 8501

.PHONY: venv run quick score test lint bench clean-venv

# PIP_FIND_LINKS is cleared so pip takes torch and torchvision as a matching pair from the
# package index (a local CPU-only torch wheel would not match PyPI's torchvision build).
# No file prerequisites: the hash in the path already encodes the requirements, and a fresh
# clone has new mtimes that would force a rebuild.
$(VENV)/.complete:
	rm -rf "$(VENV)"
	mkdir -p "$(VENV_CACHE)"
	$(PYTHON) -m venv "$(VENV)"
	PIP_FIND_LINKS= "$(VENV)/bin/pip" install --quiet --upgrade pip
	PIP_FIND_LINKS= "$(VENV)/bin/pip" install --quiet -r requirements-dev.txt
	touch "$@"

venv: $(VENV)/.complete
	ln -sfn "$(VENV)" .venv
	.venv/bin/pip install --quiet --no-deps --no-build-isolation -e .

## Main job: `knas up`: database upgrade, a worker on the embedded default (SQLite store,
## SQLite broker: no server) and the dashboard on http://127.0.0.1:$(PORT). Ctrl-C stops both.
run: venv
	.venv/bin/knas up --port $(PORT)

## Without the dashboard: a worker runs examples/quick-search.yaml (20 archs, look-up) and exits.
quick: venv
	.venv/bin/knas db upgrade
	.venv/bin/knas worker --concurrency 1 > knas-worker.log 2>&1 & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT; \
	.venv/bin/knas submit examples/quick-search.yaml --wait

## Score and correlate without the queue (in-process).
score: venv
	.venv/bin/knas score --archs $(ARCHS) --dataset $(DATASET) --proxies knas,nasi,synflow,naswot,params --out knas-scores.jsonl
	.venv/bin/knas correlate knas-scores.jsonl --dataset $(DATASET)

## Test suite (CI calls this with CI=true).
test: venv
	.venv/bin/python -m pytest -q

lint: venv
	.venv/bin/ruff check knas_core knas_cli db tasks app benchmarks tests

## Real-size benchmark (about an hour on 2 CPU cores); see docs/RESULTS.md.
bench: venv
	.venv/bin/python benchmarks/correlation.py --archs 500 --seed 0 --out-dir benchmarks/out

clean-venv:
	rm -rf "$(VENV)" .venv
