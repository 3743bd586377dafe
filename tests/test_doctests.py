"""The examples in docstrings (``>>>``) of the product's modules run as tests.

They run in one subprocess on a temporary store and state directory (``tasks.api``'s example
submits a search to the embedded broker: no server), so they can neither touch this process's
imported modules nor a user's ``knas.db``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT

PACKAGES = ("knas_core", "knas_cli", "db", "tasks", "app")


def _modules_with_examples() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if ">>> " in path.read_text(encoding="utf-8"):
                found.append(".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"))
    return found


MODULES = _modules_with_examples()

RUNNER = """
import doctest, importlib, io, json, sys, contextlib
results = {}
for name in sys.argv[1:]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        failed, attempted = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    results[name] = {"failed": failed, "attempted": attempted, "report": out.getvalue()}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def doctest_results(tmp_path_factory) -> dict[str, dict]:
    tmp = tmp_path_factory.mktemp("doctests")
    env = {k: v for k, v in os.environ.items() if k not in ("KNAS_BROKER_URL", "KNAS_RESULT_BACKEND")}
    env.update(KNAS_DATABASE_URL=f"sqlite:///{tmp / 'knas.db'}", KNAS_STATE_DIR=str(tmp / "state"),
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p))
    proc = subprocess.run([sys.executable, "-c", RUNNER, *MODULES], cwd=tmp, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_the_documented_modules_are_found():
    assert {"knas_core.proxies", "tasks.api", "knas_core.optional"} <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(doctest_results, module):
    result = doctest_results[module]
    assert result["attempted"] > 0, f"{module}: no example ran (all skipped?)"
    assert result["failed"] == 0, result["report"]
