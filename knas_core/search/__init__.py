"""Search strategies behind a registry: ``get_strategy("knas", samples=300, topk=10)``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from knas_core.registry import Registry
from knas_core.search.base import SearchContext, SearchResult, Strategy

STRATEGIES: Registry[type] = Registry("search strategy")


def register_strategy(name: str) -> Callable[[type], type]:
    return STRATEGIES.decorator(name, lambda cls: cls)


def get_strategy(name: str, **options: Any) -> Strategy:
    """Instantiate strategy ``name``; options it does not know are ignored with a clear list."""
    cls = STRATEGIES.get(name)
    known = set(cls.__dataclass_fields__) - {"name"}
    return cls(**{k: v for k, v in options.items() if k in known and v is not None})


for _module in ("knas", "nasi", "evolution", "random_search"):
    importlib.import_module(f"knas_core.search.{_module}")

__all__ = ["STRATEGIES", "SearchContext", "SearchResult", "Strategy", "get_strategy", "register_strategy"]
