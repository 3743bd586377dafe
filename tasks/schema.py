"""Search configuration, validated at submit time with messages that name the field."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from knas_core.proxies import PROXIES
from knas_core.spaces.nb201 import parse_arch


class ConfigError(ValueError):
    """An invalid search configuration; ``str()`` is one line per problem, each naming its field."""


#: Bounds of ``strategy_options``: (whole number?, lowest, highest, lowest excluded?).
STRATEGY_OPTIONS: dict[str, tuple[bool, float, float, bool]] = {
    "population": (True, 1, 15625, False), "tournament": (True, 1, 15625, False),
    "steps": (True, 1, 10_000, False), "mu": (False, 0.0, 1e6, False), "nu": (False, 0.0, 1e12, True),
    "xi": (False, 0.0, 1e6, True), "tau": (False, 0.0, 1e6, True)}
#: Training images per dataset (the largest ``train_subset`` that means anything).
TRAIN_SET_SIZE = {"cifar10": 50_000, "cifar100": 50_000, "imagenet16-120": 151_700}


class ModelOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    C: int = Field(16, ge=1, le=256, description="stem width (benchmark: 16)")
    N: int = Field(5, ge=0, le=20, description="cells per stage (benchmark: 5)")

    @field_validator("C", "N", mode="before")
    @classmethod
    def _no_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"expected a whole number, got {value!r}")
        return value

    def key(self) -> str:
        return f"C={self.C},N={self.N}"


class SearchConfig(BaseModel):
    """What a search does. Defaults follow KNAS (Xu et al. 2021): 300 samples, top-10."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=200)
    space: Literal["nb201"] = "nb201"
    strategy: Literal["knas", "nasi", "evolution", "random"] = "knas"
    dataset: Literal["cifar10", "cifar100", "imagenet16-120"] = "cifar10"
    data_source: Literal["auto", "npz", "torchvision", "imagefolder", "synthetic"] = "auto"
    data_dir: str | None = None
    proxy: str = "knas"
    proxies: list[str] | None = Field(None, description="several proxies: a log-rank ensemble")
    strategy_options: dict[str, float | int | None] = Field(
        default_factory=dict, description="population, tournament (evolution); steps, mu, nu, xi, tau (nasi)")
    samples: int = Field(300, ge=1, le=15625)
    archs: list[str] | None = Field(None, description="explicit architectures instead of sampling")
    topk: int = Field(10, ge=1, le=15625)
    eval: Literal["lookup", "train"] = "lookup"
    epochs: int = Field(12, ge=1, le=400)
    train_subset: int | None = Field(None, ge=1, description="at most the training set's size")
    batch_size: int = Field(64, ge=1, le=4096)
    seed: int = Field(0, ge=0, lt=2**31, description="stored as a 32-bit integer")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    model: ModelOptions = Field(default_factory=ModelOptions)
    chunk_size: int = Field(5, ge=1, le=1000)
    lease_seconds: int = Field(900, ge=5, le=7 * 24 * 3600,
                               description="re-dispatch unfinished work after this long")

    @field_validator("samples", "topk", "epochs", "train_subset", "batch_size", "seed", "chunk_size",
                     "lease_seconds", mode="before")
    @classmethod
    def _no_bool_for_int(cls, value: Any) -> Any:
        """``True`` is not 1: YAML ``yes``/``true`` in a count is a mistake, not a number."""
        if isinstance(value, bool):
            raise ValueError(f"expected a whole number, got {value!r}")
        return value

    @field_validator("proxy")
    @classmethod
    def _known_proxy(cls, value: str) -> str:
        if value not in PROXIES:  # perhaps a program promoted after this process started
            from db.discovery import register_discovered_proxies

            register_discovered_proxies()
        if value not in PROXIES:
            raise ValueError(f"unknown proxy {value!r}; available: {', '.join(PROXIES.names())}")
        return value

    @field_validator("proxies")
    @classmethod
    def _known_proxies(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value:
                raise ValueError("give at least one proxy, or leave proxies out")
            for name in value:
                cls._known_proxy(name)
            twice = sorted({name for name in value if value.count(name) > 1})
            if twice:
                raise ValueError(f"{', '.join(map(repr, twice))} listed more than once; name each proxy once")
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
            if option is None and name == "nu":
                continue  # nu: derived from the first batch when not given
            kind = "a whole number" if whole else "a finite number"
            if isinstance(option, bool) or not isinstance(option, int | float) \
                    or (whole and not float(option).is_integer()):
                raise ValueError(f"{name}: expected {kind}, got {option!r}")
            if not math.isfinite(option):
                raise ValueError(f"{name}: expected {kind}, got {option!r}")
            if option < low or (open_low and option == low) or option > high:
                lower = f"> {low:g}" if open_low else f">= {low:g}"
                raise ValueError(f"{name}: must be {lower} and <= {high:g}, got {option!r}")
        return {k: (int(v) if STRATEGY_OPTIONS[k][0] and v is not None else v) for k, v in value.items()}

    @field_validator("train_subset")
    @classmethod
    def _train_subset_within_the_data(cls, value: int | None, info: ValidationInfo) -> int | None:
        dataset = info.data.get("dataset")
        most = TRAIN_SET_SIZE.get(dataset, max(TRAIN_SET_SIZE.values()))
        if value is not None and value > most:
            raise ValueError(f"at most {most:,} (the {dataset or 'largest'} training set), got {value:,}")
        return value

    @property
    def staged(self) -> bool:
        """KNAS with one proxy runs as chunked tasks; everything else as one strategy task."""
        return self.strategy == "knas" and not (self.proxies and len(self.proxies) > 1)

    def proxy_list(self) -> list[str]:
        return list(self.proxies) if self.proxies else [self.proxy]

    @field_validator("archs")
    @classmethod
    def _valid_archs(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("give at least one architecture, or leave archs out to sample")
        seen: dict[tuple[str, ...], int] = {}
        for i, arch in enumerate(value):
            try:
                ops = parse_arch(arch)
            except ValueError as exc:
                raise ValueError(f"item {i}: {exc}") from None
            if ops in seen:
                raise ValueError(f"item {i}: the same architecture as item {seen[ops]}; list each once")
            seen[ops] = i
        return value

    @model_validator(mode="after")
    def _topk_within_samples(self) -> SearchConfig:
        n = len(self.archs) if self.archs else self.samples
        if self.topk > n:
            raise ValueError(f"topk ({self.topk}) cannot exceed the number of architectures ({n})")
        return self


def validate_config(raw: Any) -> SearchConfig:
    """Parse a mapping into a :class:`SearchConfig`, or raise :class:`ConfigError`."""
    if isinstance(raw, SearchConfig):
        return raw
    if not isinstance(raw, dict):
        raise ConfigError(f"a search config must be a mapping of fields, got {type(raw).__name__}")
    try:
        return SearchConfig.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "config"
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"{field}: {msg}")
        raise ConfigError("; ".join(lines)) from None
