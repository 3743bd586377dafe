"""User plugins: ``KNAS_PLUGINS=pkg.module,other.module`` imports modules that register their own
proxies or spaces (``@register_proxy`` / ``@register_space``) in every process that reads it."""

from __future__ import annotations

import importlib
import os

_loaded: set[str] = set()


def load_plugins(spec: str | None = None) -> list[str]:
    """Import the comma-separated modules in ``spec`` (default ``$KNAS_PLUGINS``) once each."""
    names = [n.strip() for n in (spec if spec is not None else os.environ.get("KNAS_PLUGINS", "")).split(",")]
    loaded = []
    for name in filter(None, names):
        if name not in _loaded:
            importlib.import_module(name)
            _loaded.add(name)
        loaded.append(name)
    return loaded
