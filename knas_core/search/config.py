"""What a search does: :class:`SearchConfig`, the one definition used by ``knas search``
(in-process), ``knas submit`` and the dashboard (stored, then run by the workers).

Strategy, dataset, data source, device, search space and proxies are checked against their
registries when a config is validated (:mod:`knas_core.config`), so a strategy, source or space
registered by a plugin is accepted as it is. A space without a benchmark table
(:attr:`~knas_core.spaces.base.SearchSpace.has_benchmark`) is searched with ``eval: train``, and
each strategy says which spaces it can search (``Strategy.check_space``: nasi only NAS-Bench-201,
evolution a space that can mutate). Messages name the field; front ends translate.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from knas_core.config import (
    Dataset,
    DataSource,
    Device,
    ProxyName,
    RunConfig,
    SpaceName,
    StrategyName,
    check_proxy,
)

#: Bounds of ``strategy_options``: (whole number?, lowest, highest, lowest excluded?).
#: ``hard`` (nasi: straight-through Gumbel-softmax) is a switch: true/false or 1/0, stored as 1/0;
#: ``eta`` (nasi: the training learning rate that sets ``nu = sqrt(2) * classes / eta``, Shu et
#: al. 2022, Sec. 3.3) excludes ``nu``.
STRATEGY_OPTIONS: dict[str, tuple[bool, float, float, bool]] = {
    "population": (True, 1, 15625, False), "tournament": (True, 1, 15625, False),
    "steps": (True, 1, 10_000, False), "mu": (False, 0.0, 1e6, False), "nu": (False, 0.0, 1e12, True),
    "xi": (False, 0.0, 1e6, True), "tau": (False, 0.0, 1e6, True), "hard": (True, 0, 1, False),
    "eta": (False, 0.0, 1e3, True)}
#: Options that are switches (``true``/``false`` or ``1``/``0``).
SWITCH_OPTIONS = frozenset({"hard"})
#: The largest ensemble weight accepted (a member weighted more is, in effect, the ranking alone).
MAX_WEIGHT = 100.0
#: Training images per dataset (the largest ``train_subset`` that means anything).
TRAIN_SET_SIZE = {"cifar10": 50_000, "cifar100": 50_000, "imagenet16-120": 151_700}


def _space_of(info: ValidationInfo) -> Any:
    """The :class:`~knas_core.spaces.base.SearchSpace` of the config being validated (built
    without reading any table), or None when its ``space`` was refused."""
    if "space" not in info.data:
        return None
    from knas_core.spaces import get_space

    return get_space(info.data["space"])


class ModelOptions(RunConfig):
    """The network built for each architecture (NAS-Bench-201 cells)."""

    kind: ClassVar[str] = "model"

    C: int = Field(16, ge=1, le=256, description="stem width (benchmark: 16)")
    N: int = Field(5, ge=0, le=20, description="cells per stage (benchmark: 5)")

    def key(self) -> str:
        return f"C={self.C},N={self.N}"

    def as_dict(self) -> dict[str, int]:
        """``{"C": ..., "N": ...}``: the ``build_model`` options of the space."""
        return {"C": self.C, "N": self.N}


class SearchConfig(RunConfig):
    """What a search does. Defaults follow KNAS (Xu et al. 2021): 300 samples, top-10."""

    kind: ClassVar[str] = "search"

    name: str = Field("", max_length=200)
    space: SpaceName = "nb201"
    strategy: StrategyName = "knas"
    dataset: Dataset = "cifar10"
    data_source: DataSource = "auto"
    data_dir: str | None = None
    proxy: ProxyName = "knas"
    proxies: list[str] | None = Field(None, description="several proxies: a log-rank ensemble")
    weights: dict[str, float] | None = Field(
        None, description="ensemble weights by member proxy (1 for a member not named): the "
                          "ensemble sums weight x log-rank")
    strategy_options: dict[str, float | int | None] = Field(
        default_factory=dict,
        description="population, tournament (evolution); steps, mu, nu, xi, tau, hard, eta (nasi)")
    samples: int = Field(300, ge=1, le=15625)
    archs: list[str] | None = Field(None, description="explicit architectures instead of sampling")
    topk: int = Field(10, ge=1, le=15625)
    eval: Literal["lookup", "train"] = Field("lookup", validate_default=True,
                                             description="lookup needs a space with a benchmark table")
    epochs: int = Field(12, ge=1, le=400)
    train_subset: int | None = Field(None, ge=1, description="at most the training set's size")
    batch_size: int = Field(64, ge=1, le=4096)
    seed: int = Field(0, ge=0, lt=2**31, description="stored as a 32-bit integer")
    device: Device = "auto"
    model: ModelOptions = Field(default_factory=ModelOptions)
    chunk_size: int = Field(5, ge=1, le=1000)
    lease_seconds: int = Field(900, ge=5, le=7 * 24 * 3600,
                               description="re-dispatch unfinished work after this long")

    @field_validator("strategy")
    @classmethod
    def _strategy_searches_the_space(cls, value: str, info: ValidationInfo) -> str:
        space = _space_of(info)
        if space is not None:
            from knas_core.search import STRATEGIES

            STRATEGIES.get(value).check_space(space)  # e.g. nasi: NAS-Bench-201 only
        return value

    @field_validator("eval")
    @classmethod
    def _lookup_needs_a_table(cls, value: str, info: ValidationInfo) -> str:
        space = _space_of(info)
        if value == "lookup" and space is not None and not space.has_benchmark:
            raise ValueError(f"look-up needs a benchmark table; space {space.name!r} has none: "
                             "use eval=train")
        return value

    @field_validator("proxies")
    @classmethod
    def _known_proxies_once_each(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("give at least one proxy, or leave proxies out")
            for name in value:
                check_proxy(name)
            twice = sorted({name for name in value if value.count(name) > 1})
            if twice:
                raise ValueError(f"{', '.join(map(repr, twice))} listed more than once; name each proxy once")
        return value

    @field_validator("weights")
    @classmethod
    def _weights_of_members(cls, value: dict[str, float] | None,
                            info: ValidationInfo) -> dict[str, float] | None:
        if value is None:
            return None
        if "proxies" not in info.data:
            return value  # the proxies are refused already
        members = info.data["proxies"] or []
        if len(members) < 2:
            raise ValueError("need an ensemble: list two or more proxies, or leave the weights out")
        for name, weight in value.items():
            if name not in members:
                raise ValueError(f"{name!r} is not a member of the ensemble ({', '.join(members)})")
            if not (math.isfinite(weight) and 0 < weight <= MAX_WEIGHT):
                raise ValueError(f"{name}: a weight must be > 0 and <= {MAX_WEIGHT:g}, got {weight!r}")
        return value

    @field_validator("strategy_options", mode="before")
    @classmethod
    def _known_options(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value  # pydantic says what is wrong
        allowed = set(STRATEGY_OPTIONS)
        unknown = sorted(set(value) - allowed, key=str)
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(map(str, unknown))}; "
                             f"allowed: {', '.join(sorted(allowed))}")
        for name, option in value.items():
            whole, low, high, open_low = STRATEGY_OPTIONS[name]
            if option is None and name in ("nu", "eta"):
                continue  # nu: derived from the first batch when neither is given
            if name in SWITCH_OPTIONS:
                if isinstance(option, str) or option not in (True, False, 0, 1):
                    raise ValueError(f"{name}: expected true or false (or 1 or 0), got {option!r}")
                continue
            kind = "a whole number" if whole else "a finite number"
            if isinstance(option, bool) or not isinstance(option, int | float) \
                    or (whole and not float(option).is_integer()):
                raise ValueError(f"{name}: expected {kind}, got {option!r}")
            if not math.isfinite(option):
                raise ValueError(f"{name}: expected {kind}, got {option!r}")
            if option < low or (open_low and option == low) or option > high:
                lower = f"> {low:g}" if open_low else f">= {low:g}"
                raise ValueError(f"{name}: must be {lower} and <= {high:g}, got {option!r}")
        if value.get("nu") is not None and value.get("eta") is not None:
            raise ValueError("give nu or eta (nu = sqrt(2) * classes / eta), not both")
        return {k: (int(v) if STRATEGY_OPTIONS[k][0] and v is not None else v) for k, v in value.items()}

    @field_validator("archs")
    @classmethod
    def _valid_archs(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("give at least one architecture, or leave archs out to sample")
        if "space" not in info.data:
            return value  # the space is refused already; its architectures cannot be checked
        space = _space_of(info)  # lazy: reads no table to check a string
        seen: dict[str, int] = {}
        for i, arch in enumerate(value):
            try:
                canonical = space.validate(arch)
            except ValueError as exc:
                raise ValueError(f"item {i}: {exc}") from None
            if canonical in seen:
                raise ValueError(f"item {i}: the same architecture as item {seen[canonical]}; list each once")
            seen[canonical] = i
        return value

    @field_validator("topk")
    @classmethod
    def _topk_within_samples(cls, value: int, info: ValidationInfo) -> int:
        if "archs" not in info.data or "samples" not in info.data:
            return value  # refused already: the count is unknown
        archs = info.data["archs"]
        n = len(archs) if archs else info.data["samples"]
        if value > n:
            raise ValueError(f"topk ({value}) cannot exceed the number of architectures ({n})")
        return value

    @field_validator("train_subset")
    @classmethod
    def _train_subset_within_the_data(cls, value: int | None, info: ValidationInfo) -> int | None:
        dataset = info.data.get("dataset")
        most = TRAIN_SET_SIZE.get(dataset or "", max(TRAIN_SET_SIZE.values()))
        if value is not None and value > most:
            raise ValueError(f"at most {most:,} (the {dataset or 'largest'} training set), got {value:,}")
        return value

    @model_validator(mode="after")
    def _samples_within_the_space(self) -> SearchConfig:
        """A sample no larger than the space (checked once the fields are valid: explicit
        ``archs``, validated after ``samples``, make ``samples`` unused)."""
        from knas_core.spaces import get_space

        size = get_space(self.space).size
        if not self.archs and self.samples > size:
            message = f"at most {size:,} (the architectures of space {self.space!r}), got {self.samples:,}"
            error = PydanticCustomError("value_error", "{message}", {"message": message})
            raise ValidationError.from_exception_data(type(self).__name__, [InitErrorDetails(
                type=error, loc=("samples",), input=self.samples)])
        return self

    @property
    def staged(self) -> bool:
        """KNAS (one proxy or an ensemble) runs as chunked scoring tasks, the top-k as training
        tasks; the other strategies, whose next sample depends on the last score, as one
        strategy task."""
        return self.strategy == "knas"

    def proxy_list(self) -> list[str]:
        return list(self.proxies) if self.proxies else [self.proxy]

    def proxy_weights(self) -> dict[str, float]:
        """Each member's ensemble weight (1 unless ``weights`` names it), in member order."""
        given = self.weights or {}
        return {p: float(given.get(p, 1.0)) for p in self.proxy_list()}

    @property
    def sample_count(self) -> int:
        """Architectures scored: the explicit ``archs`` if given, else ``samples``."""
        return len(self.archs) if self.archs else self.samples

    def strategy_kwargs(self) -> dict[str, Any]:
        """Options of :func:`knas_core.search.get_strategy`: the counts, ``strategy_options``
        given, and the network (``C``, ``N``, for strategies that build a supernet)."""
        options = {k: v for k, v in self.strategy_options.items() if v is not None}
        return {"samples": self.sample_count, "topk": self.topk, **options, **self.model.as_dict()}

    def train_config(self) -> Any:
        """The :class:`~knas_core.training.TrainConfig` of ``eval: train`` (the benchmark's
        schedule with this search's epochs, seed, device and training subset)."""
        from knas_core.training import TrainConfig

        return TrainConfig(epochs=self.epochs, seed=self.seed, device=self.device,
                           train_subset=self.train_subset)


__all__ = ["MAX_WEIGHT", "STRATEGY_OPTIONS", "SWITCH_OPTIONS", "TRAIN_SET_SIZE", "ModelOptions",
           "SearchConfig"]
