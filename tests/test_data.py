from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from knas_core.data import DataNotFoundError, ImageFolderSource, SyntheticSource, load_source, npz_source
from knas_core.groundtruth import TABLE_NAMES, GroundTruth, accuracy_column, canonical_dataset
from knas_core.paths import PACKAGE_DATA, candidate_roots, find_data, find_data_in

from .conftest import write_cifar10_folder


def test_npz_batches_are_seeded(cifar10):
    a, b, c = cifar10.batch(32, seed=1), cifar10.batch(32, seed=1), cifar10.batch(32, seed=2)
    assert a.inputs.shape == (32, 3, 32, 32) and a.inputs.dtype == torch.float32
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, c.inputs)
    assert a.targets.min() >= 0 and a.targets.max() < 10
    # Normalised with the CIFAR-10 mean/std: roughly centred and unit-scaled.
    assert abs(float(a.inputs.mean())) < 0.5 and 0.5 < float(a.inputs.std()) < 1.5


def test_cifar100_subset_and_oversized_batch():
    source = load_source("cifar100")
    assert source.num_classes == 100 and len(source) == 486
    with pytest.raises(ValueError, match="exceeds"):
        source.batch(487, seed=0)


def test_synthetic_imagenet16_batches():
    source = load_source("ImageNet16-120")
    assert isinstance(source, SyntheticSource)
    a, b = source.batch(8, seed=5), source.batch(8, seed=5)
    assert a.inputs.shape == (8, 3, 16, 16) and a.num_classes == 120
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert a.targets.max() < 120


def test_torchvision_cifar_folder(tmp_path, monkeypatch):
    data, labels = write_cifar10_folder(tmp_path)
    # Our fake files lack the official checksums; the reading path is what is under test.
    monkeypatch.setattr("torchvision.datasets.CIFAR10._check_integrity", lambda self: True)
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda *a, **k: True)
    source = load_source("cifar10", "torchvision", data_dir=tmp_path)
    assert len(source) == 5 * len(labels)
    first = source.images[0]
    assert np.array_equal(first, data[0].reshape(3, 32, 32).transpose(1, 2, 0))
    batch = source.batch(4, seed=0)
    assert batch.inputs.shape == (4, 3, 32, 32)


def test_image_folder(tmp_path):
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("RGB", (40, 24), color=(i * 40, 100, 200)).save(tmp_path / cls / f"{i}.png")
    source = load_source("cifar10", "imagefolder", data_dir=tmp_path)
    assert isinstance(source, ImageFolderSource) and len(source) == 6
    batch = source.batch(6, seed=0)
    assert batch.inputs.shape == (6, 3, 32, 32)
    assert sorted(batch.targets.tolist()) == [0, 0, 0, 1, 1, 1]


def test_lookup_order(tmp_path, monkeypatch):
    """Option, then KNAS_DATA_DIR, then the user cache, then the package data."""
    roots = {name: tmp_path / name for name in ("explicit", "env", "cache")}
    for name, root in roots.items():
        (root / "x").mkdir(parents=True)
        (root / "x" / "f.txt").write_text(name)
    monkeypatch.setenv("KNAS_DATA_DIR", str(roots["env"]))
    monkeypatch.setenv("KNAS_CACHE_DIR", str(roots["cache"]))
    assert find_data("x/f.txt", roots["explicit"]).read_text() == "explicit"
    assert find_data("x/f.txt").read_text() == "env"
    monkeypatch.delenv("KNAS_DATA_DIR")
    assert find_data("x/f.txt").read_text() == "cache"
    (roots["cache"] / "x" / "f.txt").unlink()
    with pytest.raises(DataNotFoundError, match="x/f.txt"):
        find_data("x/f.txt")
    assert [r.origin for r in candidate_roots(roots["explicit"])] == ["option", "user cache", "package"]
    assert [r.path for r in candidate_roots(roots["explicit"], fallback=False)] == [roots["explicit"]]
    # the package data answers last: the table is found there with nothing else set
    path, root = find_data_in(TABLE_NAMES)
    assert root.origin == "package" and path == PACKAGE_DATA / "nb201" / "nb201_accuracies.csv.gz"
    # ... and a copy in an earlier root wins over it
    (roots["cache"] / "nb201").mkdir()
    (roots["cache"] / "nb201" / "nb201_accuracies.csv").write_text("index,arch\n")
    assert find_data_in(TABLE_NAMES)[1].origin == "user cache"


def test_missing_data_says_where_it_looked(tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        find_data("nb201/nb201_accuracies.csv", tmp_path / "nope")
    with pytest.raises(DataNotFoundError, match="set data_dir or KNAS_DATA_DIR"):
        find_data("nb201/nb201_accuracies.csv", tmp_path, fallback=False)
    # an explicit folder without images is the only place searched for images
    with pytest.raises(DataNotFoundError, match="knas data fetch cifar10"):
        load_source("cifar10", "npz", data_dir=tmp_path)


def test_npz_reader_rejects_bad_labels(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((2, 32, 32, 3), np.uint8), y_train=np.array([0, 10]))
    with pytest.raises(ValueError, match="labels must lie"):
        npz_source("cifar10", path)


def test_ground_truth_table(truth):
    assert len(truth.frame) == 15625
    best = truth.accuracy("cifar10", "test").max()
    assert best == pytest.approx(94.37, abs=0.01)
    assert truth.accuracy("cifar100").max() == pytest.approx(73.51, abs=0.01)
    assert truth.accuracy("imagenet16-120").max() == pytest.approx(47.31, abs=0.01)
    assert truth.percentile(best, "cifar10") == 100.0
    assert accuracy_column("ImageNet16-120", "valid_12ep") == "imagenet16_120_valid_acc_12ep"
    with pytest.raises(ValueError, match="unknown dataset"):
        canonical_dataset("mnist")


def test_ground_truth_from_official_api_object(truth):
    """The .pth path goes through nas_201_api; here an object with the same methods."""
    archs = truth.archs[:3]

    def more_info(index, dataset, hp="200", is_random=False):
        return {"test-accuracy": 50.0 + index + (hp == "12"),
                "valid-accuracy": 40.0 + index + 10 * (hp == "12")}

    api = SimpleNamespace(meta_archs=archs, get_more_info=more_info,
                          get_cost_info=lambda index, dataset: {"params": 0.1 * (index + 1)})
    gt = GroundTruth.from_api(api)
    assert gt.archs == archs
    assert gt.accuracy("cifar10", "test").tolist() == [50.0, 51.0, 52.0]
    assert gt.accuracy("cifar100", "valid_12ep").tolist() == [50.0, 51.0, 52.0]
    assert gt.frame["params_mb_imagenet16_120"].tolist() == pytest.approx([0.1, 0.2, 0.3])
