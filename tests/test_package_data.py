"""The data that ships inside knas_core: what it holds, that it equals its sources, that a
machine with nothing else finds it, and that scores say which images they were computed on."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from knas_core.data import load_source
from knas_core.groundtruth import GroundTruth
from knas_core.paths import PACKAGE_DATA

from .conftest import ROOT


@pytest.fixture()
def package_only(monkeypatch, tmp_path):
    """A user's machine: no KNAS_DATA_DIR, an empty user cache."""
    monkeypatch.delenv("KNAS_DATA_DIR", raising=False)
    monkeypatch.setenv("KNAS_CACHE_DIR", str(tmp_path / "empty-cache"))


def test_manifest_lists_every_file_with_its_hash_and_the_total_fits():
    manifest = json.loads((PACKAGE_DATA / "MANIFEST.json").read_text())
    files = sorted(p.relative_to(PACKAGE_DATA).as_posix() for p in PACKAGE_DATA.rglob("*")
                   if p.is_file() and p.name != "MANIFEST.json")
    assert sorted(manifest["outputs"]) == files
    for name, out in manifest["outputs"].items():
        data = (PACKAGE_DATA / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == out["sha256"], name
    assert sum(out["bytes"] for out in manifest["outputs"].values()) <= 15 * 1024 * 1024
    assert "NAS-Bench-201" in manifest["credits"]["nb201"] and "CIFAR" in manifest["credits"]["cifar"]


def test_a_machine_with_nothing_else_reads_the_package_data(package_only):
    truth = GroundTruth.load()
    assert truth.source.startswith("package:")
    assert len(truth.frame) == 15625 and truth.frame.index.tolist() == list(range(15625))
    assert truth.accuracy("cifar10").max() == pytest.approx(94.37, abs=0.01)
    assert truth.accuracy("cifar100", "valid_12ep").notna().all()
    assert truth.frame["params_mb_imagenet16_120"].gt(0).all()

    cifar10 = load_source("cifar10")
    assert cifar10.identity.startswith("npz:cifar10_scoring_2k500-train:")
    assert len(cifar10) == 2000 and np.bincount(cifar10.labels).tolist() == [200] * 10
    test = load_source("cifar10", split="test")
    assert len(test) == 500 and np.bincount(test.labels).tolist() == [50] * 10
    cifar100 = load_source("cifar100")
    assert "package" in cifar100.description and len(cifar100) == 486
    batch = cifar10.batch(64, seed=0)
    assert batch.inputs.shape == (64, 3, 32, 32) and batch.targets.max() < 10


def test_identity_follows_the_images_not_the_path(package_only, tmp_path):
    shipped = load_source("cifar10")
    copy = tmp_path / "copy"
    (copy / "cifar10").mkdir(parents=True)
    shutil.copy(PACKAGE_DATA / "cifar10" / "cifar10_scoring_2k500.npz", copy / "cifar10")
    assert load_source("cifar10", data_dir=copy).identity == shipped.identity
    # other pixels under the same name: another identity
    with np.load(copy / "cifar10" / "cifar10_scoring_2k500.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["x_train"] = arrays["x_train"].copy()
    arrays["x_train"][0, 0, 0, 0] ^= 1
    np.savez(copy / "cifar10" / "cifar10_scoring_2k500.npz", **arrays)
    assert load_source("cifar10", data_dir=copy).identity != shipped.identity
    assert load_source("cifar10", "synthetic").identity.startswith("synthetic:")


def test_shipped_data_equals_what_the_script_builds_from_the_sources(shared_data):
    """The provenance check: rebuild from the shared folder and compare (table value by value
    against its source, images array by array, table bytes with a rebuild)."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_package_data.py"),
                           "--source", str(shared_data), "--check"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "matches its sources" in proc.stdout
    # and the shared 10k/2k subset is another set of images than the shipped 2k/500 one
    assert load_source("cifar10", data_dir=shared_data).identity != \
        load_source("cifar10", data_dir=PACKAGE_DATA).identity


def test_the_check_finds_a_changed_file(shared_data, tmp_path):
    dest = tmp_path / "bundled"
    shutil.copytree(PACKAGE_DATA, dest)
    with np.load(dest / "cifar100" / "cifar100_subset.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["y_test"] = arrays["y_test"][::-1].copy()
    np.savez_compressed(dest / "cifar100" / "cifar100_subset.npz", **arrays)
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_package_data.py"),
                           "--source", str(shared_data), "--dest", str(dest), "--check"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "y_test" in proc.stderr


def test_the_packaged_atlas_fits_and_carries_the_key_a_fresh_install_scores_under(package_only):
    """Where the package holds a score atlas (scripts/build_atlas.py): at most 2 MB, readable,
    and on the set-up a fresh install's search computes (the shipped images, the benchmark
    network), so searches take their scores from it."""
    from knas_core.atlas import PACKAGED_MAX_BYTES, PACKAGED_NAME, read_atlas

    path = PACKAGE_DATA / PACKAGED_NAME
    if not path.exists():
        pytest.skip(f"no packaged atlas yet ({PACKAGED_NAME}: scripts/build_atlas.py builds it)")
    assert path.stat().st_size <= PACKAGED_MAX_BYTES
    atlas = read_atlas(path)
    shipped = load_source("cifar10").identity
    assert {(s.dataset, s.data, s.model) for s in atlas.setups} == {("cifar10", shipped, "C=16,N=5")}
    manifest = json.loads((PACKAGE_DATA / "MANIFEST.json").read_text())
    assert manifest["atlas"]["rows"] == len(atlas.rows)


def test_build_atlas_enters_the_atlas_in_the_manifest_and_the_data_build_keeps_it(shared_data, tmp_path):
    """scripts/build_atlas.py writes the atlas of a store (here: the trial atlas imported into
    one) under --dest with its manifest entry; rebuilding the other package data keeps both."""
    from db.atlas import import_file
    from db.migrate import upgrade

    store = tmp_path / "store.db"
    upgrade(f"sqlite:///{store}")
    trial = ROOT / "tests" / "data" / "atlas_trial.csv.gz"
    import_file(trial, f"sqlite:///{store}")
    dest = tmp_path / "bundled"
    shutil.copytree(PACKAGE_DATA, dest)
    script = [sys.executable, str(ROOT / "scripts" / "build_atlas.py"), "--db", f"sqlite:///{store}",
              "--dest", str(dest), "--torch", "2.14.1"]
    refused = subprocess.run(script, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 1 and "do not cover the space" in refused.stderr
    built = subprocess.run([*script, "--partial"], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    atlas = dest / "atlas" / "nb201_atlas.csv.gz"
    assert atlas.read_bytes() == trial.read_bytes()  # the same scores, the same bytes
    manifest = json.loads((dest / "MANIFEST.json").read_text())
    assert manifest["outputs"]["atlas/nb201_atlas.csv.gz"] == {
        "sha256": hashlib.sha256(atlas.read_bytes()).hexdigest(), "bytes": atlas.stat().st_size}
    assert manifest["atlas"]["rows"] == 200 and manifest["atlas"]["architectures"] == 40
    rebuilt = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_package_data.py"),
                              "--source", str(shared_data), "--dest", str(dest)],
                             capture_output=True, text=True, timeout=600)
    assert rebuilt.returncode == 0, rebuilt.stderr
    again = json.loads((dest / "MANIFEST.json").read_text())
    assert again["outputs"]["atlas/nb201_atlas.csv.gz"] == manifest["outputs"]["atlas/nb201_atlas.csv.gz"]
    assert again["atlas"] == manifest["atlas"]
