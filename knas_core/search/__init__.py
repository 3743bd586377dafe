"""Search strategies behind a registry: ``get_strategy("knas", samples=300, topk=10)``."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from knas_core.registry import Registry
from knas_core.search.base import SearchContext, SearchResult, Strategy

STRATEGIES: Registry[type[Strategy]] = Registry("search strategy")
S = TypeVar("S", bound=Strategy)


def register_strategy(name: str) -> Callable[[type[S]], type[S]]:
    def wrap(cls: type[S]) -> type[S]:
        STRATEGIES.add(name, cls)
        return cls

    return wrap


def get_strategy(name: str, **options: Any) -> Strategy:
    """Instantiate strategy ``name``; options it does not know are ignored with a clear list."""
    cls = STRATEGIES.get(name)
    known = set(inspect.signature(cls).parameters) - {"name"}  # a dataclass: its fields
    return cls(**{k: v for k, v in options.items() if k in known and v is not None})


for _module in ("knas", "nasi", "evolution", "random_search"):
    importlib.import_module(f"knas_core.search.{_module}")

__all__ = ["STRATEGIES", "SearchContext", "SearchResult", "Strategy", "get_strategy", "register_strategy"]
