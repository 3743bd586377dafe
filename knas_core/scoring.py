"""Score architectures with proxies, recording failures instead of raising.

A score is a pure function of (architecture, proxy, dataset, batch size, seed, device type):
``seed`` draws the batch and initialises the network (each proxy gets its own fresh network
from the same seed), so a stored score is a valid cache entry.
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from knas_core.data import Batch, ImageSource, load_source
from knas_core.device import resolve_device
from knas_core.groundtruth import canonical_dataset
from knas_core.proxies import get_proxy
from knas_core.spaces import SearchSpace, get_space


@dataclass(frozen=True)
class ProxyResult:
    """One proxy on one architecture: ``value`` or ``error`` (never both), and wall seconds."""

    proxy: str
    value: float | None
    error: str | None
    seconds: float
    batch_size: int

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ArchScores:
    """Every requested proxy for one architecture."""

    arch: str
    index: int | None
    results: dict[str, ProxyResult] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """The CLI's JSON-lines record: index, arch, scores, errors, seconds."""
        return {
            "index": self.index,
            "arch": self.arch,
            "scores": {k: r.value for k, r in self.results.items()},
            "errors": {k: r.error for k, r in self.results.items() if r.error is not None},
            "seconds": {k: round(r.seconds, 6) for k, r in self.results.items()},
        }


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) for a reproducible initialisation."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def describe_exception(exc: BaseException) -> str:
    """One line: ``Type: first line of the message``; out-of-memory errors say so first."""
    if isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower():
        return f"out of memory: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else 'no message'}"


class Scorer:
    """Scores architectures of one space on one dataset.

    Args:
        dataset: ``cifar10``, ``cifar100`` or ``imagenet16-120``.
        space: search-space name or instance.
        batch_size: images per batch (proxies that prescribe their own size use theirs).
        seed: fixes the batch and the initialisation.
        device: ``auto`` | ``cpu`` | ``cuda``.
        data_source / data_dir: see :func:`knas_core.data.load_source`.
        model_options: passed to the space's ``build_model`` (e.g. ``C=8, N=1``).
    """

    def __init__(self, dataset: str, *, space: str | SearchSpace = "nb201", batch_size: int = 64,
                 seed: int = 0, device: str = "auto", data_source: str = "auto",
                 data_dir: str | os.PathLike[str] | None = None,
                 model_options: dict[str, Any] | None = None,
                 source: ImageSource | None = None) -> None:
        self.dataset = canonical_dataset(dataset)
        self.space = get_space(space) if isinstance(space, str) else space
        self.batch_size = batch_size
        self.seed = seed
        self.device = resolve_device(device)
        self.source = source if source is not None else load_source(self.dataset, data_source, data_dir)
        self.model_options = dict(model_options or {})
        self._batches: dict[int, Batch] = {}
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True

    def batch(self, size: int) -> Batch:
        if size not in self._batches:
            self._batches[size] = self.source.batch(size, self.seed).to(self.device)
        return self._batches[size]

    def score_one(self, arch: str, proxy_name: str) -> ProxyResult:
        """Run one proxy on a fresh network; exceptions and non-finite values become errors."""
        proxy = get_proxy(proxy_name)
        size = proxy.batch_size or self.batch_size
        start = time.perf_counter()
        try:
            batch = self.batch(size)
            seed_everything(self.seed)
            model = self.space.build_model(arch, batch.num_classes, **self.model_options)
            model = model.to(self.device).train()
            value = proxy(model, batch)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            if not math.isfinite(value):
                raise FloatingPointError(f"non-finite value {value}")
            result = ProxyResult(proxy_name, float(value), None, time.perf_counter() - start, size)
        except Exception as exc:  # noqa: BLE001 - a failing proxy is data, not a crash
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            result = ProxyResult(proxy_name, None, describe_exception(exc), time.perf_counter() - start, size)
        return result

    def score(self, arch: str, proxies: list[str], index: int | None = None) -> ArchScores:
        arch = self.space.validate(arch)
        out = ArchScores(arch, index)
        for name in proxies:
            out.results[name] = self.score_one(arch, name)
        return out

