"""A whole discovery run: sample disjoint training and held-out architectures, gather (or reuse)
their tensors, evolve a program, report train and held-out Kendall tau.

Used by ``knas evolve`` (in-process), the ``knas.discover`` worker task and
``benchmarks/discovery.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from knas_core.config import Dataset, DataSource, Device, RunConfig, SpaceName, at_least, check_choice
from knas_core.discovery.tensors import (
    KINDS,
    CachedArchs,
    GatherSetup,
    TensorCache,
    check_kinds,
    gather_archs,
)
from knas_core.groundtruth import METRICS, GroundTruth
from knas_core.settings import get_settings
from knas_core.spaces import get_space


def default_cache_dir() -> Path:
    """``$KNAS_TENSOR_CACHE``, else ``$KNAS_STATE_DIR/tensor-cache`` (see :mod:`knas_core.settings`)."""
    settings = get_settings()
    return settings.tensor_cache if settings.tensor_cache is not None else settings.state_dir / "tensor-cache"


class DiscoveryConfig(RunConfig):
    """A discovery run. ``archs`` training + ``heldout`` held-out architectures (disjoint, one
    seeded permutation of the ``space``), ground truth = the table's 200-epoch ``metric`` accuracy.

    The training sample is held in memory (float32) when it takes at most ``memory_gib``;
    otherwise it is streamed from the cache once per generation (all new programs of the
    generation evaluated on each architecture as it is read).

    Stored as JSON (:meth:`to_dict`) with each run; :meth:`from_dict` loads it back, ignoring
    fields this version does not know."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: ClassVar[str] = "discovery"

    archs: Annotated[int, at_least(3)] = 200
    heldout: Annotated[int, at_least(0)] = 500
    generations: Annotated[int, at_least(0)] = 10
    population: Annotated[int, at_least(2)] = 20
    seed: Annotated[int, at_least(0)] = 0
    space: SpaceName = "nb201"
    dataset: Dataset = "cifar10"
    metric: str = "test"
    C: Annotated[int, at_least(1)] = 16
    N: Annotated[int, at_least(0)] = 5
    batch_size: Annotated[int, at_least(1)] = 16
    images: int | None = 2
    kinds: tuple[str, ...] = KINDS
    half: bool = True
    device: Device = "auto"
    data_source: DataSource = "auto"
    data_dir: str | None = None
    cache_dir: str | None = None
    memory_gib: Annotated[float, at_least(0)] = 4.0
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("space")
    @classmethod
    def _space_with_a_table(cls, value: str) -> str:
        if not get_space(value).has_benchmark:
            raise ValueError(f"discovery ranks programs against a benchmark table; space {value!r} has "
                             "none")
        return value

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        return check_choice(value, METRICS, "metric")

    @field_validator("images")
    @classmethod
    def _images_within_the_batch(cls, value: int | None, info: ValidationInfo) -> int | None:
        batch_size = info.data.get("batch_size")
        if value is not None and batch_size is not None and not 1 <= value <= batch_size:
            raise ValueError(f"must lie in 1..{batch_size} (the batch size), got {value}")
        return value

    @field_validator("kinds")
    @classmethod
    def _known_kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_kinds(value)

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values (``kinds`` a list), as stored with the run."""
        d = self.model_dump()
        d["kinds"] = list(self.kinds)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DiscoveryConfig:
        """Validate a stored or submitted mapping; fields this version does not know are ignored.
        Raises :class:`~knas_core.errors.ConfigError`."""
        return cls.parse({k: v for k, v in dict(d).items() if k in cls.model_fields})

    def setup(self, device_type: str) -> GatherSetup:
        return GatherSetup(self.dataset, self.C, self.N, self.batch_size, self.images, self.seed,
                           tuple(self.kinds), device_type, self.data_source, self.half, self.space)


@dataclass
class Sample:
    """The training and held-out architectures: ``(index, arch)`` pairs and accuracies."""

    train: list[tuple[int, str]]
    train_truth: list[float]
    heldout: list[tuple[int, str]]
    heldout_truth: list[float]


def sample_archs(cfg: DiscoveryConfig, truth: GroundTruth | None = None) -> Sample:
    truth = truth or GroundTruth.load(cfg.data_dir)
    space = get_space(cfg.space, archs_in_index_order=truth.archs)
    archs = space.sample(cfg.archs + cfg.heldout, cfg.seed)
    pairs = [(space.index_of(a), a) for a in archs]
    acc = truth.accuracy(cfg.dataset, cfg.metric)
    values = [float(acc.loc[i]) for i, _ in pairs]
    return Sample(pairs[:cfg.archs], values[:cfg.archs], pairs[cfg.archs:], values[cfg.archs:])


Progress = Callable[[str, int, int], None]  # (stage, done, total); stage: a DiscoveryProgress


class DiscoveryProgress(StrEnum):
    """The stages :func:`run_discovery` reports through its :data:`Progress` callback (a member
    equals its value): ``gather``, architectures whose tensors are gathered or found cached;
    ``evolve``, generations evolved."""

    GATHER = "gather"
    EVOLVE = "evolve"


def open_cache(cfg: DiscoveryConfig) -> TensorCache:
    from knas_core.device import resolve_device

    root = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    return TensorCache(root, cfg.setup(resolve_device(cfg.device).type))


def gather_sample(cfg: DiscoveryConfig, sample: Sample, progress: Progress | None = None) -> TensorCache:
    """Gather (or find cached) tensors of every sampled architecture: stage ``gather``."""
    cache = open_cache(cfg)
    gather_archs(sample.train + sample.heldout, cache, device=cfg.device, data_dir=cfg.data_dir,
                 progress=(lambda d, t: progress(DiscoveryProgress.GATHER, d, t)) if progress else None)
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
            progress(DiscoveryProgress.EVOLVE, gen.generation, cfg.generations)
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
