"""Shared fixtures: the benchmark table, small networks, deterministic batches.

Data: the tests read what the product reads, through the look-up order of
:mod:`knas_core.paths`. Where ``../shared/data`` sits beside the checkout and ``KNAS_DATA_DIR`` is
unset, the tests name it through ``KNAS_DATA_DIR`` (the only place outside CI that does); in a
fresh clone without it they run on the package data. The user cache is replaced by an empty
folder for the session, so what a user fetched never changes a test, and the packaged score atlas
is not imported into new stores (``KNAS_ATLAS_IMPORT=0``).
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from knas_core.data import load_source
from knas_core.groundtruth import GroundTruth
from knas_core.spaces import get_space

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
if "KNAS_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
    os.environ["KNAS_DATA_DIR"] = str(SHARED_DATA)
os.environ["KNAS_CACHE_DIR"] = tempfile.mkdtemp(prefix="knas-test-cache-")
# A new store stays empty (no packaged score atlas imported by `knas up` / `knas db upgrade`), so
# tests count the rows they make; tests/test_atlas.py turns the import on where it tests it.
os.environ.setdefault("KNAS_ATLAS_IMPORT", "0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
SMALL = {"C": 4, "N": 1}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The data folder laid out as ``../shared/data`` (``KNAS_DATA_DIR``), for the tests that
    compare the package data with its sources; they skip where it is absent, except in CI."""
    env = os.environ.get("KNAS_DATA_DIR")
    path = Path(env) if env else SHARED_DATA
    if not (path / "nb201" / "nb201_accuracies.csv").is_file():
        reason = f"no shared data folder ({path}); set KNAS_DATA_DIR to a copy of ../shared/data"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def truth() -> GroundTruth:
    return GroundTruth.load()


@pytest.fixture(scope="session")
def space(truth: GroundTruth):
    return get_space("nb201", archs_in_index_order=truth.archs)


@pytest.fixture(scope="session")
def cifar10():
    return load_source("cifar10")


@pytest.fixture()
def small_model(space):
    def make(arch: str = ARCH, seed: int = 0, num_classes: int = 10, **options):
        torch.manual_seed(seed)
        return space.build_model(arch, num_classes, **{**SMALL, **options}).train()

    return make


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """The same store tests run against every backend (as Optuna does for its storages)."""
    from db.migrate import upgrade

    from .services import postgres_database

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'knas.db'}"
        upgrade(url)
        yield url
        from db.session import dispose_engine

        dispose_engine(url)
    else:
        with postgres_database() as url:
            upgrade(url)
            yield url


def eager_tasks(url, monkeypatch):
    """Celery tasks run in-process against the store at ``url`` (a generator for fixtures)."""
    from tasks.celery_app import app

    monkeypatch.setenv("KNAS_DATABASE_URL", url)
    monkeypatch.setattr("tasks.common.check_broker", lambda timeout=5.0: None)
    app.conf.task_always_eager = True
    yield url
    app.conf.task_always_eager = False


@pytest.fixture()
def eager(db_url, monkeypatch):
    """Tasks run in-process, on SQLite and on PostgreSQL."""
    yield from eager_tasks(db_url, monkeypatch)


def write_cifar10_folder(root: Path, n: int = 20):
    """A fake ``cifar-10-batches-py`` folder (torchvision's pickled layout) of ``n`` random images
    per batch file under ``root``; returns the images and labels of each file."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, size=n)]
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as fh:
            pickle.dump({"data": data, "labels": labels}, fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, fh)
    return data, labels
