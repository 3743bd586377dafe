"""Search configuration for the workers and their API.

The model is :class:`knas_core.search.config.SearchConfig` (re-exported here with its error,
:class:`~knas_core.errors.ConfigError`). :func:`validate_config` only validates: it never
reaches the database. A process that validates a config naming a proxy promoted into the
database after it started calls :func:`load_config`, which registers the promoted proxies first.
"""

from __future__ import annotations

from typing import Any

from knas_core.errors import ConfigError
from knas_core.proxies import PROXIES
from knas_core.search.config import STRATEGY_OPTIONS, TRAIN_SET_SIZE, ModelOptions, SearchConfig

__all__ = ["STRATEGY_OPTIONS", "TRAIN_SET_SIZE", "ConfigError", "ModelOptions", "SearchConfig", "load_config",
           "register_promoted_proxies", "validate_config"]


def validate_config(raw: Any) -> SearchConfig:
    """Parse a mapping into a :class:`SearchConfig`, or raise :class:`ConfigError` (no database access)."""
    return SearchConfig.parse(raw)


def register_promoted_proxies(raw: Any) -> None:
    """Register the proxies promoted into the database (``KNAS_DATABASE_URL``) when ``raw``
    names a proxy this process does not know, e.g. one promoted after it started. Reads the
    database only then; never raises (an unreachable store registers nothing)."""
    if not isinstance(raw, dict):
        return
    proxies = raw.get("proxies")
    names = [raw.get("proxy"), *(proxies if isinstance(proxies, list) else [])]
    if any(isinstance(n, str) and n not in PROXIES for n in names):
        from db.discovery import register_discovered_proxies

        register_discovered_proxies()


def load_config(raw: Any) -> SearchConfig:
    """:func:`validate_config` after :func:`register_promoted_proxies`: for a submitted or
    stored config in a process that has the database (the API, the workers)."""
    register_promoted_proxies(raw)
    return validate_config(raw)
