"""Proxy discovery through the store and the workers (eager Celery), and ``knas evolve``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from db import discovery as repo
from db.session import session_scope
from knas_core.proxies import PROXIES, get_proxy

from .conftest import eager_tasks

KNAS = str(Path(sys.executable).with_name("knas"))


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tensor-cache"))


@pytest.fixture()
def tiny(cache_dir):
    return {"archs": 6, "heldout": 3, "generations": 2, "population": 4, "seed": 2, "C": 4, "N": 1,
            "device": "cpu", "cache_dir": cache_dir}


@pytest.fixture()
def eager_sqlite(tmp_path, monkeypatch):
    """Tasks run in-process on SQLite only (what the store adds is covered above on both)."""
    from db.migrate import upgrade
    from db.session import dispose_engine

    url = f"sqlite:///{tmp_path / 'knas.db'}"
    upgrade(url)
    yield from eager_tasks(url, monkeypatch)
    dispose_engine(url)


@pytest.mark.slow  # a whole discovery run (gather, evolve, promote, search with the program), twice
def test_run_on_worker_records_generations_and_promotes_a_proxy(eager, tiny):
    from tasks.api import search_progress, submit_search
    from tasks.discovery import discovery_progress, promote_run, submit_discovery

    run_id = submit_discovery(tiny, name="lab")
    p = discovery_progress(run_id)
    assert p["status"] == "done" and p["stage"] == "done" and p["gathered"] == p["total"] == 9
    assert [g["generation"] for g in p["history"]] == [0, 1, 2]
    assert p["best_formula"] == p["history"][-1]["best_formula"]
    assert p["train_kendall"] == p["history"][-1]["best_fitness"]
    assert all(a["best_fitness"] <= b["best_fitness"] for a, b in zip(p["history"], p["history"][1:]))

    name = f"lab_{uuid.uuid4().hex[:8]}"
    assert promote_run(run_id, name) == {"name": name, "formula": p["best_formula"]}
    assert get_proxy(name).needs_labels is False
    with pytest.raises(ValueError, match="already exists"), session_scope() as s:
        repo.promote(s, name, "mean(data_A)")
    # a fresh process (here: the registry without it) loads it from the database
    PROXIES._items.pop(name)
    from knas_core.discovery import proxy as formula_proxies

    formula_proxies._FORMULAS.pop(name)
    assert name in repo.register_discovered_proxies(eager)
    # ... and a search on the workers can use it like a built-in proxy
    search_id = submit_search({"samples": 4, "topk": 2, "proxy": name, "batch_size": 16,
                               "model": {"C": 4, "N": 1}, "device": "cpu", "seed": 1})
    assert search_progress(search_id)["status"] == "done"


def test_a_run_resumes_from_its_last_generation(eager_sqlite, tiny):
    from knas_core.discovery.run import DiscoveryConfig, run_discovery
    from tasks.discovery import discover, discovery_progress, submit_discovery

    full = discovery_progress(submit_discovery(tiny))
    states = []  # what a worker stores after each generation
    run_discovery(DiscoveryConfig.from_dict(tiny), on_generation=lambda g: states.append(g.to_dict(True)))
    with session_scope() as s:  # a run whose worker died after storing generation 0
        run = repo.create_run(s, full["config"])
        run.status, run.stage, run.state = "running", "evolve", states[0]
        run_id = run.id
    assert discover(run_id) == "done"
    resumed = discovery_progress(run_id)
    assert [g["generation"] for g in resumed["history"]] == [1, 2]
    assert resumed["best_formula"] == full["best_formula"]
    assert [g["best_formula"] for g in resumed["history"]] == [g["best_formula"] for g in full["history"][1:]]
    assert [g["mean_fitness"] for g in resumed["history"]] == [g["mean_fitness"] for g in full["history"][1:]]


def test_a_failing_run_is_recorded(eager_sqlite, tiny):
    from tasks.discovery import cancel_discovery, discovery_progress, submit_discovery

    run_id = submit_discovery({**tiny, "data_source": "npz", "data_dir": "/nonexistent"})
    p = discovery_progress(run_id)
    assert p["status"] == "failed" and p["error"].startswith("DataNotFoundError:")
    assert "\n" not in p["error"]
    assert cancel_discovery(run_id) == "failed"  # an ended run keeps its ending
    with pytest.raises(ValueError, match="archs"):
        submit_discovery({**tiny, "archs": 1})
    with pytest.raises(KeyError):
        discovery_progress(10**6)


@pytest.mark.integration
def test_knas_evolve_json_contract(tmp_path, cache_dir):
    env = {**os.environ, "KNAS_DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    args = [KNAS, "evolve", "--archs", "6", "--heldout", "3", "--generations", "2", "--population", "4",
            "--seed", "2", "--C", "4", "--N", "1", "--device", "cpu", "--cache-dir", cache_dir]
    proc = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["generations"] == 2 and len(out["history"]) == 3
    assert out["train_kendall"] == out["history"][-1]["best_fitness"]
    assert out["heldout_kendall"] == out["history"][-1]["heldout_kendall"]
    assert -1.0 <= out["train_kendall"] <= 1.0 and out["formula"]
    bad = subprocess.run([*args[:3], "1"], capture_output=True, text=True, timeout=120, env=env)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["knas: error: --archs: must be at least 3, got 1"]
