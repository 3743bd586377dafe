"""Ground-truth accuracies of the NAS-Bench-201 space.

Two sources give the same :class:`GroundTruth` frame (one row per official index):

* the table ``nb201/nb201_accuracies.csv`` (or its gzip form ``.csv.gz``, which ships as package
  data), found by the data look-up order of :mod:`knas_core.paths`;
* an official NAS-Bench-201 ``.pth`` through the ``nas-bench-201`` package (``nas_201_api``).

Columns: ``arch``, ``<ds>_{valid,test}_acc``, ``<ds>_valid_acc_12ep``, ``params_mb_<ds>`` for
``ds`` in ``cifar10``, ``cifar100``, ``imagenet16_120``. Accuracies are percentages.
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from knas_core.errors import ConfigError, DataFileError, InputError
from knas_core.paths import find_data_in

#: The table's names within a data root, in order of preference (the package data holds the gzip).
TABLE_NAMES = ("nb201/nb201_accuracies.csv", "nb201/nb201_accuracies.csv.gz")

#: Canonical dataset names and their column prefixes in the table.
DATASETS: dict[str, str] = {"cifar10": "cifar10", "cifar100": "cifar100",
                            "imagenet16-120": "imagenet16_120"}
METRICS: dict[str, str] = {"test": "test_acc", "valid": "valid_acc", "valid_12ep": "valid_acc_12ep"}


class BenchmarkFileError(ValueError, InputError):
    """A file given as the NAS-Bench-201 benchmark that is not one (or cannot be read as one)."""


def canonical_dataset(name: str) -> str:
    """Normalise a dataset name (``ImageNet16-120``, ``imagenet16_120`` -> ``imagenet16-120``)."""
    key = name.strip().lower().replace("_", "-")
    if key not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return key


def accuracy_column(dataset: str, metric: str = "test") -> str:
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    return f"{DATASETS[canonical_dataset(dataset)]}_{METRICS[metric]}"


class GroundTruth:
    """Benchmark accuracies indexed by official architecture index."""

    def __init__(self, frame: pd.DataFrame, source: str = "") -> None:
        if "arch" not in frame.columns:
            raise DataFileError("ground-truth frame needs an 'arch' column")
        self.frame = frame.sort_index()
        #: Where the values came from (a file and why it was chosen), for status pages.
        self.source = source

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str], source: str = "") -> GroundTruth:
        """A CSV (plain or gzip) with an ``index`` column."""
        frame = pd.read_csv(path)
        if "index" not in frame.columns:
            raise DataFileError(f"{path}: expected an 'index' column")
        return cls(frame.set_index("index"), source or str(path))

    @classmethod
    def load(cls, data_dir: str | os.PathLike[str] | None = None) -> GroundTruth:
        """The table, found by the data look-up order (``data_dir`` first, then ``$KNAS_DATA_DIR``,
        the user cache and the package data)."""
        path, root = find_data_in(TABLE_NAMES, data_dir)
        return cls.from_csv(path, f"{root.origin}: {path}")

    @classmethod
    def from_api(cls, api: Any) -> GroundTruth:
        """Build the frame from a ``nas_201_api.NASBench201API`` (or an object with its methods).

        Uses ``api.meta_archs`` for the index order, ``get_more_info(i, ds, hp=...)`` for
        accuracies and ``get_cost_info(i, ds)['params']`` for sizes.
        """
        rows = []
        for index, arch in enumerate(api.meta_archs):
            row: dict[str, Any] = {"index": index, "arch": arch}
            for ds, prefix in DATASETS.items():
                api_ds = "ImageNet16-120" if ds == "imagenet16-120" else ds
                valid_ds = "cifar10-valid" if ds == "cifar10" else api_ds
                final = api.get_more_info(index, api_ds, hp="200", is_random=False)
                valid = api.get_more_info(index, valid_ds, hp="200", is_random=False)
                short = api.get_more_info(index, valid_ds, hp="12", is_random=False)
                row[f"{prefix}_test_acc"] = final["test-accuracy"]
                row[f"{prefix}_valid_acc"] = valid["valid-accuracy"]
                row[f"{prefix}_valid_acc_12ep"] = short["valid-accuracy"]
                row[f"params_mb_{prefix}"] = api.get_cost_info(index, api_ds)["params"]
            rows.append(row)
        return cls(pd.DataFrame(rows).set_index("index"))

    @classmethod
    def from_pth(cls, path: str | os.PathLike[str]) -> GroundTruth:
        """Load an official NAS-Bench-201 ``.pth`` file with the ``nas-bench-201`` package.

        Raises :class:`FileNotFoundError` for a missing file and :class:`BenchmarkFileError` for one
        the package cannot read as the benchmark (any other file: its loader fails deep inside
        ``torch.load`` with an ``IndexError`` or an unpickling error)."""
        from pathlib import Path

        if not Path(path).is_file():
            raise FileNotFoundError(f"benchmark file {str(path)!r} not found")
        from knas_core.optional import require

        NASBench201API = require("nas_201_api", "nb201", "reading a NAS-Bench-201 .pth").NASBench201API
        try:
            return cls.from_api(NASBench201API(str(path), verbose=False))
        except Exception as exc:  # noqa: BLE001 - whatever the loader trips over, the file is wrong
            reason = str(exc).splitlines()[0] if str(exc) else ""
            raise BenchmarkFileError(
                f"{path} is not a NAS-Bench-201 benchmark file (e.g. NAS-Bench-201-v1_0-e61699.pth): "
                f"{type(exc).__name__}{': ' + reason if reason else ''}") from None

    @property
    def archs(self) -> list[str]:
        return self.frame["arch"].tolist()

    @cached_property
    def _index_of(self) -> dict[str, int]:
        return {a: int(i) for i, a in zip(self.frame.index, self.frame["arch"])}

    def index_of(self, arch: str) -> int:
        return self._index_of[arch]

    def accuracy(self, dataset: str, metric: str = "test") -> pd.Series:
        """Accuracies (%) for every index, as a Series named after the column."""
        return self.frame[accuracy_column(dataset, metric)]

    def percentile(self, value: float, dataset: str, metric: str = "test") -> float:
        """Share (0..100) of architectures whose accuracy is at most ``value``."""
        acc = self.accuracy(dataset, metric).to_numpy()
        return float(100.0 * np.mean(acc <= value))


def benchmark_lookup(truth: GroundTruth, index: int, dataset: str) -> dict[str, float]:
    """The benchmark's accuracies (%) for official ``index`` instead of training it.

    Returns ``{"valid_12ep", "test_200ep", "percentile"}``: the validation accuracy after the
    12-epoch schedule, the test accuracy after 200 epochs, and the share (0..100) of the space
    whose 200-epoch test accuracy is at most this one's (NAS-Bench-201 protocol, Dong & Yang 2020).
    """
    if index not in truth.frame.index:
        raise ValueError(f"index {index} is not in the ground-truth table "
                         f"(0..{int(truth.frame.index.max())})")
    valid_12ep = float(truth.accuracy(dataset, "valid_12ep").loc[index])
    test_200ep = float(truth.accuracy(dataset, "test").loc[index])
    return {"valid_12ep": valid_12ep, "test_200ep": test_200ep,
            "percentile": truth.percentile(test_200ep, dataset)}
