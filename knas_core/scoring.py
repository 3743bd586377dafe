"""Score architectures with proxies, recording failures instead of raising.

A score is a pure function of (architecture, proxy, dataset, batch size, seed, device type):
``seed`` draws the batch and initialises the network, so a stored score is a valid cache entry.
Every proxy sees the network that ``seed`` initialises: :meth:`Scorer.score_one` builds it for
the one proxy, :meth:`Scorer.score` builds it once per architecture for all the proxies that
leave it as found (``shares_network``) and computes the proxies of
:data:`~knas_core.proxies.shared.SHARED_PROXIES` from shared passes
(:func:`~knas_core.proxies.shared.shared_scores`); the values are the same either way. A derived
proxy (``Proxy.members``/``combine``, e.g. a few-shot calibrated model) is computed from its
members' values on the same architecture, which :meth:`Scorer.score` scores alongside.
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
from knas_core.proxies.base import Proxy
from knas_core.proxies.shared import SHARED_PROXIES, shared_scores
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


#: Fragments of a failure's description (:func:`describe_exception`) that mark it transient:
#: the same score may succeed on another try (memory pressure, a worker that died).
TRANSIENT_MARKS = ("out of memory", "memoryerror", "cannot allocate memory", "can't allocate memory",
                   "failed to allocate", "worker died")


def is_transient(error: str | None) -> bool:
    """Whether a failure described as ``error`` may not recur: out of memory, an allocation
    failure, a ``MemoryError`` or a dead worker. Deterministic failures (a proxy that raises
    on an architecture) are stored as cache entries; transient ones are tried again by the
    next search that needs the score."""
    text = (error or "").lower()
    return bool(text) and any(mark in text for mark in TRANSIENT_MARKS)


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

    def build(self, arch: str, num_classes: int) -> torch.nn.Module:
        """The network of ``arch`` initialised from the seed, in train mode, on the device."""
        seed_everything(self.seed)
        model = self.space.build_model(arch, num_classes, **self.model_options)
        return model.to(self.device).train()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _result(self, name: str, outcome: float | BaseException, seconds: float, size: int) -> ProxyResult:
        """A value, or the reason it is missing: an exception or a non-finite value."""
        if not isinstance(outcome, BaseException) and not math.isfinite(outcome):
            outcome = FloatingPointError(f"non-finite value {outcome}")
        if isinstance(outcome, BaseException):
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return ProxyResult(name, None, describe_exception(outcome), seconds, size)
        return ProxyResult(name, float(outcome), None, seconds, size)

    def _run(self, proxy: Proxy, model: torch.nn.Module, batch: Batch) -> float | Exception:
        try:
            value = float(proxy(model, batch))
            self._sync()
            return value
        except Exception as exc:  # noqa: BLE001 - a failing proxy is data, not a crash
            return exc

    def score_one(self, arch: str, proxy_name: str) -> ProxyResult:
        """Run one proxy on a fresh network; exceptions and non-finite values become errors.
        A derived proxy is scored with its members by :meth:`score`."""
        proxy = get_proxy(proxy_name)
        if proxy.derived:
            return self.score(arch, [proxy_name]).results[proxy_name]
        size = proxy.batch_size or self.batch_size
        start = time.perf_counter()
        try:
            batch = self.batch(size)
            outcome = self._run(proxy, self.build(arch, batch.num_classes), batch)
        except Exception as exc:  # noqa: BLE001 - e.g. a network that cannot be built
            outcome = exc
        return self._result(proxy_name, outcome, time.perf_counter() - start, size)

    def score(self, arch: str, proxies: list[str], index: int | None = None) -> ArchScores:
        """Every proxy of ``proxies`` on ``arch``, with the network built once.

        Proxies that leave the network as found (``shares_network``) share one network, and
        two or more of :data:`~knas_core.proxies.shared.SHARED_PROXIES` share their passes;
        other proxies (e.g. plugins) get their own network through :meth:`score_one`. The
        values equal those of :meth:`score_one`. ``seconds``: a proxy's own time, plus an even
        share of the network build among the proxies on the shared network; proxies served by
        the shared passes split those passes' time evenly.

        A derived proxy's members are scored too (reported only if asked for); its value is
        ``combine(arch, member values)``, its ``seconds`` the sum of its members' and its own.
        """
        arch = self.space.validate(arch)
        asked = list(dict.fromkeys(proxies))
        registered = {n: get_proxy(n) for n in asked}
        derived = [n for n in asked if registered[n].derived]
        for name in derived:
            for member in registered[name].members:
                registered.setdefault(member, get_proxy(member))
                if registered[member].derived:
                    raise ValueError(f"proxy {name!r}: member {member!r} is itself derived; the members "
                                     "of a derived proxy must be computed from a network")
        names = [n for n in registered if not registered[n].derived]
        on_network = [n for n in names if registered[n].shares_network]
        pooled = [n for n in on_network if n in SHARED_PROXIES and registered[n].batch_size is None]
        if len(pooled) < 2:
            pooled = []
        results: dict[str, ProxyResult] = {}
        if on_network:
            results.update(self._score_on_one_network(arch, on_network, pooled, registered))
        for name in names:
            if name not in results:
                results[name] = self.score_one(arch, name)
        for name in derived:
            results[name] = self._derive(arch, registered[name], results)
        out = ArchScores(arch, index)
        out.results = {n: results[n] for n in asked}
        return out

    def _derive(self, arch: str, proxy: Proxy, results: dict[str, ProxyResult]) -> ProxyResult:
        """A derived proxy's result from its members' results: the first failed member's error
        (named), else ``combine``'s value or exception."""
        members = [results[m] for m in proxy.members]
        seconds = sum(r.seconds for r in members)
        failed = next((r for r in members if r.value is None), None)
        if failed is not None:
            return ProxyResult(proxy.name, None, f"member {failed.proxy} failed: {failed.error}",
                               seconds, self.batch_size)
        values = {r.proxy: float(r.value) for r in members if r.value is not None}
        start = time.perf_counter()
        outcome: float | BaseException
        try:
            if proxy.combine is None:
                raise TypeError(f"proxy {proxy.name!r} is not derived")
            outcome = float(proxy.combine(arch, values))
        except Exception as exc:  # noqa: BLE001 - a failing model is data, not a crash
            outcome = exc
        return self._result(proxy.name, outcome, seconds + time.perf_counter() - start, self.batch_size)

    def _score_on_one_network(self, arch: str, names: list[str], pooled: list[str],
                              registered: dict[str, Proxy]) -> dict[str, ProxyResult]:
        sizes = {n: registered[n].batch_size or self.batch_size for n in names}
        start = time.perf_counter()
        try:
            model = self.build(arch, self.batch(self.batch_size).num_classes)
        except Exception as exc:  # noqa: BLE001 - every proxy on this network fails alike
            seconds = (time.perf_counter() - start) / len(names)
            return {n: self._result(n, exc, seconds, sizes[n]) for n in names}
        build_share = (time.perf_counter() - start) / len(names)
        results: dict[str, ProxyResult] = {}
        if pooled:
            start = time.perf_counter()
            outcomes = shared_scores(model, self.batch(self.batch_size), pooled)
            self._sync()
            share = (time.perf_counter() - start) / len(pooled)
            for n in pooled:
                results[n] = self._result(n, outcomes[n], build_share + share, sizes[n])
        for n in names:
            if n in results:
                continue
            start = time.perf_counter()
            try:
                outcome = self._run(registered[n], model, self.batch(sizes[n]))
            except Exception as exc:  # noqa: BLE001 - e.g. no data for this batch size
                outcome = exc
            results[n] = self._result(n, outcome, build_share + time.perf_counter() - start, sizes[n])
        return results
