"""KNAS Studio's settings: every ``KNAS_*`` environment variable, read in one place.

One :class:`Settings` object (pydantic-settings, prefix ``KNAS_``) holds what the library, the
store, the workers and the dashboard read from the environment; the README's Configuration table
lists them all. The store and queue settings are plain strings here: ``knas_core`` never imports
the database or Celery code that uses them.

:func:`get_settings` validates the environment once and returns the same object until a
``KNAS_*`` variable of this process changes (a test's ``monkeypatch.setenv``, ``knas worker``
passing ``--threads`` to its pool processes), when it reads them again. A bad value raises
:class:`SettingsError`, one line naming the variable.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from annotated_types import Ge
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from knas_core.errors import InputError

__all__ = ["ENV_PREFIX", "Settings", "SettingsError", "env_name", "get_settings", "reload_settings",
           "settings_from"]

ENV_PREFIX = "KNAS_"


class SettingsError(InputError, ValueError):
    """A ``KNAS_*`` variable holds a value KNAS Studio cannot use; ``str()`` names it, e.g.
    ``KNAS_MAX_ATTEMPTS: expected a whole number >= 1, got 'x'``."""


class Settings(BaseSettings):
    """Every ``KNAS_*`` environment variable (field ``max_attempts`` is ``KNAS_MAX_ATTEMPTS``).

    Empty variables count as unset. Paths have ``~`` expanded."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="ignore",
                                      frozen=True)

    # --- the store and the queue (used by db and tasks) ---
    database_url: str = Field(
        "sqlite:///knas.db", description="SQLAlchemy URL of the store (searches, scores, runs)")
    broker_url: str | None = Field(
        None, description="Celery broker; default: kombu's SQLAlchemy transport on "
                          "`$KNAS_STATE_DIR/broker.sqlite` (embedded, no server)")
    result_backend: str | None = Field(
        None, description="Celery result backend; default `db+sqlite:///$KNAS_STATE_DIR/results.sqlite`")
    state_dir: Path = Field(
        Path(".knas"), description="embedded broker and results, training checkpoints, tensor cache")
    visibility_timeout: int = Field(
        3600, ge=1, description="seconds after which Redis re-delivers an unacknowledged task")
    task_time_limit: int = Field(
        86400, ge=1, description="hard limit of one task in seconds (the soft limit is 60 s earlier)")
    dispatch_window: int = Field(
        4, ge=1, description="chunk messages of one search in flight at once (refilled as chunks finish)")
    max_attempts: int = Field(
        3, ge=1, description="deliveries of an architecture whose worker died before it fails")
    sweep_seconds: float = Field(
        60.0, ge=0, description="seconds between a worker's checks for expired leases; 0: none")
    torch_threads: int | None = Field(
        None, ge=1, description="torch threads per worker process; set by `knas worker --threads`")

    # --- data and plugins (used by knas_core) ---
    data_dir: Path | None = Field(
        None, description="a data folder searched before the user cache and the package data")
    cache_dir: Path | None = Field(
        None, description="where `knas data fetch` downloads to; default the user cache "
                          "(`~/.cache/knas-studio/data` on Linux)")
    tensor_cache: Path | None = Field(
        None, description="tensor cache of proxy discovery; default `$KNAS_STATE_DIR/tensor-cache`")
    plugins: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="comma-separated modules imported in every process (extra proxies or spaces)")

    atlas_import: bool = Field(
        True, description="`0`/`false`/`no`/`off`: `knas up` and `knas db upgrade` leave an empty store "
                          "empty instead of importing the packaged score atlas")

    # --- the dashboard ---
    read_only: bool = Field(
        False, description="`1`/`true`/`yes`/`on`: the whole dashboard is read-only")
    lab_token: str | None = Field(
        None, description="write actions on the dashboard need this token")

    @field_validator("state_dir", "data_dir", "cache_dir", "tensor_cache")
    @classmethod
    def _expand_user(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @field_validator("plugins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings  # the environment only: no .env file, no secrets folder


class _Given(Settings):
    """Settings from the given values only (see :func:`settings_from`)."""

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def env_name(field: str) -> str:
    """The environment variable of a :class:`Settings` field (``max_attempts`` -> ``KNAS_MAX_ATTEMPTS``)."""
    return ENV_PREFIX + field.upper()


def _expected(field: str) -> str | None:
    """What a field takes, in words, for the error message (None: use pydantic's)."""
    info = Settings.model_fields[field]
    bound = next((m.ge for m in info.metadata if isinstance(m, Ge)), None)
    suffix = f" >= {bound}" if bound is not None else ""
    if info.annotation in (int, int | None):
        return "a whole number" + suffix
    if info.annotation in (float, float | None):
        return "a number" + suffix
    if info.annotation is bool:
        return "1, true, yes or on (or 0, false, no, off)"
    return None


def _one_line(exc: ValidationError) -> SettingsError:
    problems = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        if field not in Settings.model_fields:
            problems.append(err["msg"])
            continue
        expected = _expected(field)
        what = f"expected {expected}" if expected else err["msg"].lower()
        problems.append(f"{env_name(field)}: {what}, got {err['input']!r}")
    return SettingsError("; ".join(problems))


def settings_from(environ: Mapping[str, str]) -> Settings:
    """Settings from ``environ`` (a mapping of variable names, as ``os.environ``) instead of the
    process environment; raises :class:`SettingsError` naming a bad variable."""
    upper = {key.upper(): value for key, value in environ.items()}
    given: dict[str, Any] = {name: upper[env_name(name)] for name in Settings.model_fields
                             if upper.get(env_name(name))}  # strings, parsed by pydantic
    try:
        return _Given(**given)
    except ValidationError as exc:
        raise _one_line(exc) from None


_LOCK = threading.Lock()
_CACHED: tuple[tuple[tuple[str, str], ...], Settings] | None = None


def _snapshot() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX)))


def get_settings() -> Settings:
    """The settings of this process's environment, validated once (again only after a ``KNAS_*``
    variable changed). Raises :class:`SettingsError` naming a bad variable."""
    global _CACHED
    snapshot = _snapshot()
    cached = _CACHED
    if cached is not None and cached[0] == snapshot:
        return cached[1]
    with _LOCK:
        try:
            settings = Settings()
        except ValidationError as exc:
            raise _one_line(exc) from None
        _CACHED = (snapshot, settings)
    return settings


def reload_settings() -> Settings:
    """Forget the validated settings and read the environment again."""
    global _CACHED
    _CACHED = None
    return get_settings()
