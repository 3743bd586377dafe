"""Plugins named by entry points (``knas.spaces``, ``knas.proxies``): a toy space and a toy proxy
registered through an installed distribution's ``entry_points.txt``, then searched and scored.

An installed distribution is a ``*.dist-info`` folder on ``sys.path`` (what ``pip install``
writes); the tests write one into a temporary folder and put that folder on the path, in this
process (``importlib.metadata`` looks at ``sys.path`` on every call) or in a ``knas`` child.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from knas_core import plugins
from knas_core.plugins import PluginError, load_plugins
from knas_core.proxies import PROXIES
from knas_core.spaces import SPACES

from .conftest import ROOT
from .processes import KNAS

TOY_ENTRY_POINTS = {"knas.spaces": {"toy": "tests.plugins.toy_space"},
                    "knas.proxies": {"toy_width": "tests.plugins.toy_proxy"}}
TOY_MODULES = ("tests.plugins.toy_space", "tests.plugins.toy_proxy")
TOY_ARCHS = ("mlp-8", "mlp-16", "mlp-32", "mlp-64", "conv-8", "conv-16", "conv-32", "conv-64")
#: A search of the toy space, evaluated by one epoch of training on 64 synthetic images.
TOY_SEARCH = {"space": "toy", "eval": "train", "epochs": 1, "train_subset": 64, "samples": 4, "topk": 2,
              "data_source": "synthetic", "batch_size": 16, "device": "cpu", "seed": 3}


def installed(folder: Path, groups: dict[str, dict[str, str]], name: str = "knas-test-plugins") -> Path:
    """Write the metadata of an installed distribution ``name`` with entry points ``groups``
    ({group: {entry point: value}}) into ``folder``; returns ``folder`` (to put on the path)."""
    info = folder / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()) + "\n"
        for group, entries in groups.items()))
    return folder


@pytest.fixture()
def fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process as if no plugin had been loaded: entry points are looked up again, the toy
    modules imported again; what they register is unregistered afterwards."""
    monkeypatch.setattr(plugins, "_scanned", False)
    monkeypatch.setattr(plugins, "_loaded", set())
    monkeypatch.setattr(plugins, "_failures", {})
    for module in TOY_MODULES:
        monkeypatch.delitem(sys.modules, module, raising=False)
    yield
    for registry, name in ((SPACES, "toy"), (PROXIES, "toy_width")):
        if name in registry:
            registry.remove(name)
    for module in TOY_MODULES:
        sys.modules.pop(module, None)


@pytest.fixture()
def toy_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_plugins: None) -> Path:
    """The toy space and proxy, registered in this process through their entry points."""
    folder = installed(tmp_path / "site", TOY_ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(folder))
    importlib.invalidate_caches()
    assert load_plugins("") == []
    return folder


def child_env(*folders: Path) -> dict[str, str]:
    """The environment of a ``knas`` child that sees ``folders`` (and this checkout's tests)."""
    path = os.pathsep.join([str(ROOT), *map(str, folders)])
    return {**os.environ, "PYTHONPATH": path, "KNAS_PLUGINS": ""}


# --- loading ----------------------------------------------------------------------------------------

def test_entry_points_register_a_space_and_a_proxy(toy_plugins):
    from knas_core.spaces import get_space

    assert "toy" in SPACES and "toy_width" in PROXIES
    space = get_space("toy")
    assert not space.has_benchmark and space.can_mutate
    assert [space.arch_at(i) for i in range(space.size)] == list(TOY_ARCHS) == list(space.enumerate())
    assert space.sample(8, 0) != list(TOY_ARCHS) and sorted(space.sample(8, 0)) == sorted(TOY_ARCHS)
    rng = np.random.default_rng(0)
    assert all(space.mutate(a, rng) in set(TOY_ARCHS) - {a} for a in TOY_ARCHS for _ in range(5))
    load_plugins("")  # once per process: nothing is imported or registered twice
    assert sys.modules["tests.plugins.toy_space"].ToySpace is SPACES.get("toy")


def test_a_plugin_proxy_is_scorable_on_plugin_and_builtin_spaces(toy_plugins):
    from knas_core.scoring import Scorer

    from .conftest import ARCH, SMALL

    toy = Scorer("cifar10", space="toy", batch_size=8, device="cpu", data_source="synthetic")
    result = toy.score("conv-16", ["toy_width", "params"]).results
    parameters = sum(p.numel() for p in toy.build("conv-16", 10).parameters())
    assert result["toy_width"].error is None and result["toy_width"].value == pytest.approx(parameters / 1000)
    nb201 = Scorer("cifar10", batch_size=8, device="cpu", data_source="synthetic", model_options=SMALL)
    assert nb201.score_one(ARCH, "toy_width").value > 0


@pytest.mark.integration
def test_a_plugin_that_fails_to_load_is_one_line_naming_it(tmp_path, monkeypatch, fresh_plugins):
    folder = installed(tmp_path / "site", {
        "knas.spaces": {"broken": "tests.plugins.no_such_module"},
        "knas.proxies": {"toy_width": "tests.plugins.toy_proxy:toy_width"}})
    monkeypatch.syspath_prepend(str(folder))
    importlib.invalidate_caches()
    with pytest.raises(PluginError) as info:
        load_plugins("tests.plugins.toy_space")
    message = str(info.value)
    assert "\n" not in message
    assert ("plugin 'broken' (entry point knas.spaces of knas-test-plugins): cannot import "
            "tests.plugins.no_such_module: ModuleNotFoundError: No module named "
            "'tests.plugins.no_such_module'") in message
    assert "plugin 'toy_width' (entry point knas.proxies of knas-test-plugins) names " in message
    assert "toy" in SPACES  # the plugins that load are loaded all the same
    with pytest.raises(PluginError, match="plugin 'broken'"):
        load_plugins("")  # reported again by every later call (the dashboard shows it on each page)

    proc = subprocess.run([KNAS, "search", "--help"], capture_output=True, text=True, timeout=300,
                          env=child_env(folder))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("knas: error: plugin ") and "plugin 'broken' (entry point knas.spaces" \
        in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


# --- searching a plugin space ----------------------------------------------------------------------

@pytest.mark.integration
def test_knas_search_trains_the_top_k_of_a_plugin_space(tmp_path):
    folder = installed(tmp_path / "site", TOY_ENTRY_POINTS)
    args = ["search", "--space", "toy", "--eval", "train", "--epochs", "1", "--train-subset", "64",
            "--samples", "4", "--topk", "2", "--data-source", "synthetic", "--batch-size", "16",
            "--device", "cpu", "--proxies", "knas"]  # the default ensemble's eznas reads NB201 cells
    proc = subprocess.run([KNAS, *args, "--json"], capture_output=True, text=True, timeout=300,
                          env=child_env(folder))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["arch"] in TOY_ARCHS and out["index"] == TOY_ARCHS.index(out["arch"])
    assert out["eval"] == "train" and out["evaluated"] == 2 and out["scored"] == 4
    assert 0.0 <= out["accuracy"] <= 100.0  # the trained test accuracy
    assert out["test_acc"] is None and out["percentile"] is None  # no benchmark table
    refused = subprocess.run([KNAS, *args[:3]], capture_output=True, text=True, timeout=300,
                             env=child_env(folder))
    assert refused.returncode == 2
    assert ("--eval: look-up needs a benchmark table; space 'toy' has none: use eval=train"
            in refused.stderr), refused.stderr


@pytest.mark.parametrize("strategy", ["evolution", "random"])
def test_other_strategies_search_a_plugin_space(toy_plugins, strategy):
    from knas_core.search.run import SearchRun

    options = {"population": 3, "tournament": 2} if strategy == "evolution" else {}
    result = SearchRun({**TOY_SEARCH, "strategy": strategy, "proxy": "toy_width", "samples": 6,
                        "strategy_options": options}).run()
    assert result["arch"] in TOY_ARCHS and result["test_acc"] is None and result["percentile"] is None
    assert result["accuracy"] == max(t["accuracy"] for t in result["trace"])
    assert result["evaluated"] == 2 and result["scored"] == (6 if strategy == "evolution" else 0)


def test_a_worker_searches_a_plugin_space(eager, toy_plugins, tmp_path, monkeypatch):
    """The staged worker path (sample, chunked scoring, training the top-k) on the toy space:
    no benchmark rows are stored and the result has no test accuracy."""
    monkeypatch.setattr("tasks.settings.checkpoint_dir", lambda: tmp_path)  # not another test's run-1.pt
    from sqlalchemy import func, select

    from db import repository as repo
    from db.models import BenchmarkAccuracy, TrainingRun
    from db.session import session_scope
    from tasks.api import search_progress, submit_search

    search_id = submit_search({**TOY_SEARCH, "chunk_size": 2})
    p = search_progress(search_id)
    assert p["status"] == "done" and p["scored"] == 4 and p["evaluated"] == 2, p
    best = p["best"]
    assert best["arch"] in TOY_ARCHS and best["test_acc"] is None and best["percentile"] is None
    with session_scope(eager) as s:
        assert s.scalar(select(func.count()).select_from(BenchmarkAccuracy)) == 0
        runs = list(s.scalars(select(TrainingRun)))
        assert len(runs) == 2 and all(r.status == "done" for r in runs)
        cands = repo.candidates(s, search_id)
        assert {c.architecture.arch for c in cands} <= set(TOY_ARCHS)
        assert {c.architecture.space for c in cands} == {"toy"}
    assert p["best"]["accuracy"] == max(r.final_test_acc for r in runs)

    from streamlit.testing.v1 import AppTest  # the dashboard shows it, without NAS-Bench-201 cells

    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=30)
    at.query_params["search"] = str(search_id)
    at.run()
    at.switch_page("screens/3_Search_detail.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert {a.strip("`") for a in at.table[0].value["architecture"]} <= set(TOY_ARCHS)  # shown as code
    # histogram, best-so-far, score by sampling order, training curves: no cell drawing
    assert len(at.get("plotly_chart")) == 4
