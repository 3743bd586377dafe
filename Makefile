# Set-up and entry points. Every target creates (or reuses) the virtual environment first.
#
# Two layers, so that clones share the heavy downloads but never each other's code:
# * $(DEPS): the third-party packages only (torch, streamlit, ...), exactly the versions pinned in
#   requirements.lock, cached outside the checkout and keyed on a hash of the lock, so a fresh
#   clone with an unchanged lock reuses it. The project itself is never installed there.
# * .venv: this checkout's own small environment. A .pth file adds $(DEPS)'s site-packages
#   (site.addsitedir, so the packages' own .pth files still apply) and the project is installed
#   in editable mode from this checkout: `.venv/bin/knas` always runs this checkout's code.
#
# requirements.lock pins every package of pyproject.toml's dependencies and all its extras (web,
# workers, postgres, discovery, nb201, dev) for every platform, so that every machine resolves the
# same torch. `make lock` rewrites it after a change to pyproject.toml, keeping the other pins;
# `make lock UPGRADE=--upgrade-package=NAME` (or `UPGRADE=--upgrade`: everything) moves versions.

PYTHON     ?= python3
VENV_CACHE ?= $(HOME)/.cache/knas-studio
REQ_HASH   := $(shell sha256sum < requirements.lock | cut -c1-16)
DEPS       := $(VENV_CACHE)/deps-$(REQ_HASH)
ARCHS      ?= 20
DATASET    ?= cifar10
PORT       ?= 8501

.PHONY: venv run quick score test test-all lint lock bench package-data clean-venv

# PIP_FIND_LINKS is cleared so pip takes torch and torchvision as a matching pair from the
# package index (a local CPU-only torch wheel would not match PyPI's torchvision build).
# No file prerequisites: the hash in the path already encodes the lock, and a fresh
# clone has new mtimes that would force a rebuild. `.complete` is written last, so a clone
# never trusts a half-built cache (the next call starts it again), and a lock keeps two clones
# that run make at once from building the same folder.
$(DEPS)/.complete:
	mkdir -p "$(VENV_CACHE)"
	exec 9> "$(DEPS).lock" && flock 9 && if [ ! -f "$@" ]; then \
		rm -rf "$(DEPS)" && \
		$(PYTHON) -m venv "$(DEPS)" && \
		PIP_FIND_LINKS= "$(DEPS)/bin/python" -m pip install --quiet --upgrade pip && \
		PIP_FIND_LINKS= "$(DEPS)/bin/python" -m pip install --quiet -r requirements.lock && \
		touch "$@"; fi

PURELIB := import sysconfig; print(sysconfig.get_paths()["purelib"])

# This checkout's environment; rebuilt when the dependency layer or pyproject.toml changes.
.venv/.knas-$(REQ_HASH): $(DEPS)/.complete pyproject.toml
	rm -rf .venv
	"$(DEPS)/bin/python" -m venv --without-pip .venv
	echo "import site; site.addsitedir('$$("$(DEPS)/bin/python" -c '$(PURELIB)')')" \
		> "$$(.venv/bin/python -c '$(PURELIB)')/_knas_deps.pth"
	PIP_FIND_LINKS= "$(DEPS)/bin/python" -m pip --python .venv/bin/python install --quiet \
		--no-deps --no-build-isolation -e .
	touch "$@"

venv: .venv/.knas-$(REQ_HASH)

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

## The fast tier, for development: unit and store tests (SQLite and PostgreSQL), no processes,
## servers, browser or full-size networks (markers in pyproject.toml). A few minutes.
test: venv
	.venv/bin/python -m pytest -q -m "not integration and not browser and not slow"

## Everything, as CI runs it (.ci/run calls this with CI=true).
test-all: venv
	.venv/bin/python -m pytest -q

## Static checks (CI runs them before the tests): ruff on every package, mypy on knas_core, db and
## tasks (settings in pyproject.toml).
lint: venv
	.venv/bin/python -m ruff check knas_core knas_cli db tasks app benchmarks scripts tests
	.venv/bin/python -m mypy

UV_VERSION := 0.13.9
UV         := $(VENV_CACHE)/uv-$(UV_VERSION)/bin/uv
UPGRADE    ?=

$(UV):
	$(PYTHON) -m venv "$(VENV_CACHE)/uv-$(UV_VERSION)"
	PIP_FIND_LINKS= "$(VENV_CACHE)/uv-$(UV_VERSION)/bin/python" -m pip install --quiet "uv==$(UV_VERSION)"

## Rewrite requirements.lock from pyproject.toml (all extras, every platform, Python 3.11).
lock: $(UV)
	"$(UV)" pip compile pyproject.toml --all-extras --universal --python-version 3.11 --quiet \
		--custom-compile-command "make lock" $(UPGRADE) -o requirements.lock

## Real-size benchmark (about an hour on 2 CPU cores); see docs/RESULTS.md.
bench: venv
	.venv/bin/python benchmarks/correlation.py --archs 500 --seed 0 --out-dir benchmarks/out

clean-venv:
	rm -rf "$(DEPS)" .venv
