"""The base of every run configuration: one pydantic model per kind of run.

Each kind of run (a search, a training run, a discovery run, a GP evolution) is one subclass
of :class:`RunConfig`, defined next to the code that runs it. The base gives them the same
rules and the same errors:

* unknown fields are refused (``extra="forbid"``), and a number field refuses ``True`` and
  ``False`` (YAML ``yes`` in a count is a mistake, not 1);
* :meth:`RunConfig.parse` (and the constructor) raise :class:`~knas_core.errors.ConfigError`
  with one ``field: message`` per problem and the ``(field, message)`` pairs in ``problems``.
  Messages name the model's field, never a command-line flag or a form label: each front end
  translates field names into its own words (the CLI into flags, the dashboard into widgets);
* names chosen from a registry (strategy, data source, dataset, device, search space, proxy)
  are checked against the registry when the config is validated (:func:`check_choice`), so a
  newly registered name is accepted without editing any model, and an unknown one is refused
  with the list of available names.

Validation never reaches the database: a process that needs the proxies promoted into the
database registers them first (``db.discovery.register_discovered_proxies``).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from knas_core.errors import ConfigError

#: The field name of a problem that belongs to no field (e.g. the config is not a mapping).
WHOLE_CONFIG = "config"


def _number_kind(annotation: Any) -> str | None:
    """``"a whole number"`` for ``int`` (or a union with it), ``"a number"`` for ``float``, else
    None (``bool`` fields take booleans)."""
    members = (typing.get_args(annotation)
               if typing.get_origin(annotation) in (typing.Union, types.UnionType) else (annotation,))
    if int in members:
        return "a whole number"
    if float in members:
        return "a number"
    return None


def problems_of(exc: ValidationError) -> list[tuple[str, str]]:
    """``(field, message)`` per error of ``exc``; nested fields are dotted (``model.C``)."""
    out = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or WHOLE_CONFIG
        out.append((field, err["msg"].removeprefix("Value error, ")))
    return out


def config_error(problems: list[tuple[str, str]]) -> ConfigError:
    """A :class:`ConfigError` whose message is ``field: message`` per problem, ``; ``-separated."""
    return ConfigError("; ".join(f"{field}: {message}" for field, message in problems), problems)


def check_choice(value: str, names: Iterable[str], kind: str) -> str:
    """``value`` if it is one of ``names`` (read from a registry at call time), else a
    ``ValueError`` naming the ``kind`` and listing the available names."""
    names = list(names)
    if value not in names:
        raise ValueError(f"unknown {kind} {value!r}; available: {', '.join(names)}")
    return value


def at_least(low: float) -> AfterValidator:
    """A field bound ``value >= low`` (``None`` passes) with the message ``must be at least
    LOW, got VALUE`` (``cannot be negative, got VALUE`` for 0)."""

    def check(value: Any) -> Any:
        if value is not None and value < low:
            bound = "cannot be negative" if low == 0 else f"must be at least {low:g}"
            raise ValueError(f"{bound}, got {value!r}")
        return value

    return AfterValidator(check)


def within(low: float, high: float) -> AfterValidator:
    """A field bound ``low <= value <= high`` (``None`` passes): ``must lie in LOW..HIGH, got VALUE``."""

    def check(value: Any) -> Any:
        if value is not None and not low <= value <= high:
            raise ValueError(f"must lie in {low:g}..{high:g}, got {value!r}")
        return value

    return AfterValidator(check)


# --- names chosen from a registry, read when a config is validated --------------------------------
# (imported here, not at the top, so this module stays light and a test's registration counts)

def _dataset(value: str) -> str:
    from knas_core.groundtruth import canonical_dataset

    return canonical_dataset(value)


def _data_source(value: str) -> str:
    from knas_core import data

    return check_choice(value, data.SOURCES, "data source")


def _device(value: str) -> str:
    from knas_core import device

    return check_choice(value, device.DEVICES, "device")


def _space(value: str) -> str:
    from knas_core.spaces import SPACES

    return check_choice(value, SPACES.names(), "search space")


def _strategy(value: str) -> str:
    from knas_core.search import STRATEGIES

    return check_choice(value, STRATEGIES.names(), "search strategy")


def check_proxy(value: str) -> str:
    """``value`` if it names a registered proxy (or a saved ``calibrated:NAME`` model, which the
    look-up registers), else a ``ValueError`` listing the proxies."""
    from knas_core.proxies import CALIBRATED_PREFIX, get_proxy, proxy_names
    from knas_core.registry import UnknownNameError

    try:
        get_proxy(value)
    except UnknownNameError as exc:
        if value.startswith(CALIBRATED_PREFIX):  # its message lists the saved models
            raise ValueError(str(exc)) from None
        return check_choice(value, proxy_names(), "proxy")
    return value


#: A dataset of :data:`knas_core.groundtruth.DATASETS`, canonicalised (``CIFAR10`` -> ``cifar10``).
Dataset = Annotated[str, AfterValidator(_dataset)]
#: A data source of :data:`knas_core.data.SOURCES`.
DataSource = Annotated[str, AfterValidator(_data_source)]
#: A device of :data:`knas_core.device.DEVICES`.
Device = Annotated[str, AfterValidator(_device)]
#: A search space of :data:`knas_core.spaces.SPACES`.
SpaceName = Annotated[str, AfterValidator(_space)]
#: A search strategy of :data:`knas_core.search.STRATEGIES`.
StrategyName = Annotated[str, AfterValidator(_strategy)]
#: A proxy of :data:`knas_core.proxies.PROXIES` (promoted programs only once registered).
ProxyName = Annotated[str, AfterValidator(check_proxy)]


class RunConfig(BaseModel):
    """Base of the run configurations: no unknown fields, no booleans as numbers, and
    :class:`ConfigError` (one ``field: message`` per problem) instead of pydantic's error."""

    model_config = ConfigDict(extra="forbid")
    #: What the model configures, in messages about the whole config ("a search config ...").
    kind: ClassVar[str] = "run"

    def __init__(self, /, **data: Any) -> None:
        """Validate ``data``; raises :class:`ConfigError` (not pydantic's ``ValidationError``)."""
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise config_error(problems_of(exc)) from None

    # Validation (``model_validate``, a nested model) does not go through ``__init__`` (as for
    # pydantic's own RootModel): only a direct construction is translated here.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_refuse_bools(cls, value: Any, info: ValidationInfo) -> Any:
        """``True`` is not 1: a boolean given for a number is refused."""
        field = cls.model_fields.get(info.field_name or "")
        kind = _number_kind(field.annotation) if isinstance(value, bool) and field is not None else None
        if kind is not None:
            raise ValueError(f"expected {kind}, got {value!r}")
        return value

    def replace(self, **changes: Any) -> Self:
        """A validated copy with ``changes`` (``dataclasses.replace`` for these models)."""
        return type(self).parse({**self.model_dump(), **changes})

    @classmethod
    def parse(cls, raw: Any) -> Self:
        """Validate a mapping of fields (or return an instance as is); raises :class:`ConfigError`."""
        if isinstance(raw, cls):
            return raw
        if not isinstance(raw, Mapping):
            message = f"a {cls.kind} config must be a mapping of fields, got {type(raw).__name__}"
            raise ConfigError(message, [(WHOLE_CONFIG, message)])
        try:
            return cls.model_validate(dict(raw))
        except ValidationError as exc:
            raise config_error(problems_of(exc)) from None


__all__ = ["WHOLE_CONFIG", "ConfigError", "DataSource", "Dataset", "Device", "ProxyName", "RunConfig",
           "SpaceName", "StrategyName", "at_least", "check_choice", "check_proxy", "config_error",
           "problems_of", "within"]
