"""A whole discovery run: sample disjoint training and held-out architectures, gather (or reuse)
their tensors, evolve a program, report train and held-out Kendall tau.

Used by ``knas evolve`` (in-process), the ``knas.discover`` worker task and
``benchmarks/discovery.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from knas_core.discovery.tensors import KINDS, CachedArchs, GatherSetup, TensorCache, gather_archs
from knas_core.groundtruth import GroundTruth, canonical_dataset
from knas_core.spaces import get_space

DEFAULT_CACHE = Path(".knas") / "tensor-cache"


def default_cache_dir() -> Path:
    """``$KNAS_TENSOR_CACHE``, else ``$KNAS_STATE_DIR/tensor-cache``, else ``.knas/tensor-cache``."""
    if os.environ.get("KNAS_TENSOR_CACHE"):
        return Path(os.environ["KNAS_TENSOR_CACHE"])
    if os.environ.get("KNAS_STATE_DIR"):
        return Path(os.environ["KNAS_STATE_DIR"]) / "tensor-cache"
    return DEFAULT_CACHE


@dataclass(frozen=True)
class DiscoveryConfig:
    """A discovery run. ``archs`` training + ``heldout`` held-out architectures (disjoint, one
    seeded permutation of the space), ground truth = the table's 200-epoch ``metric`` accuracy.

    The training sample is held in memory (float32) when it takes at most ``memory_gib``;
    otherwise it is streamed from the cache once per generation (all new programs of the
    generation evaluated on each architecture as it is read)."""

    archs: int = 200
    heldout: int = 500
    generations: int = 10
    population: int = 20
    seed: int = 0
    dataset: str = "cifar10"
    metric: str = "test"
    C: int = 16
    N: int = 5
    batch_size: int = 16
    images: int | None = 2
    kinds: tuple[str, ...] = KINDS
    half: bool = True
    device: str = "auto"
    data_source: str = "auto"
    data_dir: str | None = None
    cache_dir: str | None = None
    memory_gib: float = 4.0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.archs < 3:
            raise ValueError(f"--archs must be at least 3, got {self.archs}")
        if self.heldout < 0:
            raise ValueError(f"--heldout cannot be negative, got {self.heldout}")
        if self.population < 2:
            raise ValueError(f"--population must be at least 2, got {self.population}")
        if self.generations < 0:
            raise ValueError(f"--generations cannot be negative, got {self.generations}")
        if self.images is not None and not 1 <= self.images <= self.batch_size:
            raise ValueError(f"--images must lie in 1..{self.batch_size}, got {self.images}")
        unknown = set(self.kinds) - set(KINDS)
        if not self.kinds or unknown:
            raise ValueError(f"input kinds must be among {', '.join(KINDS)}, got {', '.join(self.kinds)}")
        object.__setattr__(self, "dataset", canonical_dataset(self.dataset))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kinds"] = list(self.kinds)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DiscoveryConfig:
        d = dict(d)
        if "kinds" in d:
            d["kinds"] = tuple(d["kinds"])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

    def setup(self, device_type: str) -> GatherSetup:
        return GatherSetup(self.dataset, self.C, self.N, self.batch_size, self.images, self.seed,
                           tuple(self.kinds), device_type, self.data_source, self.half)


@dataclass
class Sample:
    """The training and held-out architectures: ``(index, arch)`` pairs and accuracies."""

    train: list[tuple[int, str]]
    train_truth: list[float]
    heldout: list[tuple[int, str]]
    heldout_truth: list[float]


def sample_archs(cfg: DiscoveryConfig, truth: GroundTruth | None = None) -> Sample:
    truth = truth or GroundTruth.load(cfg.data_dir)
    space = get_space("nb201", archs_in_index_order=truth.archs)
    archs = space.sample(cfg.archs + cfg.heldout, cfg.seed)
    pairs = [(space.index_of(a), a) for a in archs]
    acc = truth.accuracy(cfg.dataset, cfg.metric)
    values = [float(acc.loc[i]) for i, _ in pairs]
    return Sample(pairs[:cfg.archs], values[:cfg.archs], pairs[cfg.archs:], values[cfg.archs:])


Progress = Callable[[str, int, int], None]


def open_cache(cfg: DiscoveryConfig) -> TensorCache:
    from knas_core.device import resolve_device

    root = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    return TensorCache(root, cfg.setup(resolve_device(cfg.device).type))


def gather_sample(cfg: DiscoveryConfig, sample: Sample, progress: Progress | None = None) -> TensorCache:
    """Gather (or find cached) tensors of every sampled architecture: stage ``gather``."""
    cache = open_cache(cfg)
    gather_archs(sample.train + sample.heldout, cache, device=cfg.device, data_dir=cfg.data_dir,
                 progress=(lambda d, t: progress("gather", d, t)) if progress else None)
    return cache


def training_bytes(cache: TensorCache, indices: list[int]) -> int:
    """Estimated float32 bytes of the cached tensors of ``indices`` (from their file sizes)."""
    files = [cache.path(i) for i in indices if cache.has(i)]
    on_disk = sum(f.stat().st_size for f in files)
    return 2 * on_disk if cache.setup.half else on_disk


def run_discovery(cfg: DiscoveryConfig, progress: Progress | None = None,
                  on_generation: Callable[[Any], None] | None = None,
                  resume: Any = None) -> dict[str, Any]:
    """Gather, then evolve; returns ``{formula, readable, train_kendall, heldout_kendall,
    generations, history, failed_archs, ...}`` (JSON-ready)."""
    from knas_core.discovery.evolve import EvolveConfig, evolve, kendall
    from knas_core.discovery.formula import readable
    from knas_core.discovery.language import Program

    sample = sample_archs(cfg)
    cache = gather_sample(cfg, sample, progress)
    train = CachedArchs(cache, [i for i, _ in sample.train], keep=False)
    size = training_bytes(cache, train.indices)
    train.keep = size <= cfg.memory_gib * 2**30
    held = CachedArchs(cache, [i for i, _ in sample.heldout], keep=False)

    def heldout(program: Program) -> tuple[float | None, float]:
        if not sample.heldout:
            return None, 0.0
        return kendall(program.evaluate(held).scores, sample.heldout_truth)  # streamed from disk

    def report(gen: Any) -> None:
        if progress is not None:
            progress("evolve", gen.generation, cfg.generations)
        if on_generation is not None:
            on_generation(gen)

    result = evolve(train, sample.train_truth, heldout,
                    EvolveConfig(population=cfg.population, generations=cfg.generations, seed=cfg.seed,
                                 kinds=tuple(cfg.kinds)), report, resume)
    return {
        "formula": result.formula,
        "readable": readable(result.formula, tuple(cfg.kinds)),
        "train_kendall": result.train_kendall,
        "heldout_kendall": result.heldout_kendall,
        "generations": cfg.generations,
        "history": [g.to_dict() for g in result.generations],
        "failed_archs": len(train.failed),
        "training_in_memory": train.keep,
        "archs": cfg.archs,
        "heldout": cfg.heldout,
        "cache": str(cache.dir),
    }
