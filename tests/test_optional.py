"""The extras of pyproject.toml: the core runs without any of them, and an entry point that needs
a missing one says in one line which extra to install.

A package is made absent by ``sys.modules[name] = None`` (its import then fails as if it were
not installed), in one subprocess that runs every case through ``knas_cli.main.main``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from knas_core.optional import EXTRAS, MissingExtraError, missing_extra, require

from .conftest import ROOT

ABSENT = [module for modules in EXTRAS.values() for module in modules]

#: case: (argv of `knas`, the extra its message must name; None: must succeed)
CASES = {
    "score": (["score", "--archs", "1", "--C", "4", "--N", "1", "--proxies", "params,synflow"], None),
    "worker": (["worker", "--concurrency", "1"], "workers"),
    "submit": (["submit", "search.yaml"], "workers"),
    "web": (["web", "--port", "1"], "web"),
    "up": (["up", "--port", "1"], "web"),
    "evolve": (["evolve", "--archs", "2", "--heldout", "0"], "discovery"),
    "postgres": (["db", "upgrade"], "postgres"),
    "calibrate": (["calibrate", "lab", "--lookup", "10"], "calibration"),
    "nb201": (["correlate", "scores.jsonl", "--benchmark-file", "NAS-Bench-201-v1_0-e61699.pth"], "nb201"),
}

RUNNER = """
import contextlib, io, json, os, sys
for name in sys.argv[2:]:
    sys.modules[name] = None
from knas_cli.main import main
results = {}
for case, (argv, env) in json.loads(sys.argv[1]).items():
    os.environ.update(env)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code
    results[case] = {"rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue()}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def without_extras(tmp_path_factory) -> dict[str, dict]:
    """Every case run once in one process where no optional package can be imported."""
    tmp = tmp_path_factory.mktemp("no-extras")
    (tmp / "scores.jsonl").write_text("")
    (tmp / "search.yaml").write_text("samples: 4\ntopk: 1\n")
    (tmp / "NAS-Bench-201-v1_0-e61699.pth").write_bytes(b"")
    sqlite = f"sqlite:///{tmp / 'knas.db'}"
    cases = {case: (argv, {"KNAS_DATABASE_URL": sqlite}) for case, (argv, _) in CASES.items()}
    cases["postgres"][1]["KNAS_DATABASE_URL"] = "postgresql+psycopg://postgres@127.0.0.1:1/knas"
    env = {**os.environ, "KNAS_STATE_DIR": str(tmp / "state"),
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(cases), *ABSENT], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.integration
def test_the_core_scores_without_any_extra(without_extras):
    result = without_extras["score"]
    assert result["rc"] == 0, result["stderr"][-2000:]
    record = json.loads(result["stdout"])
    assert record["scores"]["params"] > 0 and record["scores"]["synflow"] is not None


@pytest.mark.integration
@pytest.mark.parametrize("case", [c for c, (_, extra) in CASES.items() if extra])
def test_a_missing_extra_is_one_line_naming_it(without_extras, case):
    result, extra = without_extras[case], CASES[case][1]
    lines = result["stderr"].strip().splitlines()
    assert result["rc"] == 2 and len(lines) == 1, result["stderr"][-2000:]
    assert lines[0].startswith("knas: error: ") and "is not installed" in lines[0]
    assert lines[0].endswith(f"pip install 'knas-studio[{extra}]'"), lines[0]


def test_require_names_the_extra_and_keeps_other_import_errors(monkeypatch):
    monkeypatch.setitem(sys.modules, "plotly", None)
    with pytest.raises(MissingExtraError) as info:
        require("plotly", "web", "the dashboard")
    assert str(info.value) == ("the dashboard needs the package 'plotly', which is not installed: "
                               "pip install 'knas-studio[web]'")
    assert isinstance(info.value, ImportError) and info.value.extra == "web"
    assert require("json", "web", "x").__name__ == "json"
    inner = ModuleNotFoundError("No module named 'six'", name="six")  # broken inside a package
    assert missing_extra(inner, "web", "the dashboard") is inner
    assert isinstance(missing_extra(ModuleNotFoundError("x", name="deap"), "discovery", "p"),
                      MissingExtraError)


def test_every_extra_is_declared_in_pyproject():
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(EXTRAS) <= set(extras)
