"""Search configuration, validated at submit time with messages that name the field."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from knas_core.proxies import PROXIES
from knas_core.spaces.nb201 import parse_arch


class ConfigError(ValueError):
    """An invalid search configuration; ``str()`` is one line per problem, each naming its field."""


class ModelOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    C: int = Field(16, ge=1, le=256, description="stem width (benchmark: 16)")
    N: int = Field(5, ge=0, le=20, description="cells per stage (benchmark: 5)")

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
    topk: int = Field(10, ge=1)
    eval: Literal["lookup", "train"] = "lookup"
    epochs: int = Field(12, ge=1, le=400)
    train_subset: int | None = Field(None, ge=1)
    batch_size: int = Field(64, ge=1, le=4096)
    seed: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    model: ModelOptions = Field(default_factory=ModelOptions)
    chunk_size: int = Field(5, ge=1, le=1000)
    lease_seconds: int = Field(900, ge=5, description="re-dispatch unfinished work after this long")

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
        return value

    @field_validator("strategy_options")
    @classmethod
    def _known_options(cls, value: dict) -> dict:
        allowed = {"population", "tournament", "steps", "mu", "nu", "xi", "tau"}
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(unknown)}; "
                             f"allowed: {', '.join(sorted(allowed))}")
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
        for i, arch in enumerate(value):
            try:
                parse_arch(arch)
            except ValueError as exc:
                raise ValueError(f"item {i}: {exc}") from None
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
