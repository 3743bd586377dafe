"""A tiny name -> object registry shared by search spaces and proxies.

Modelled on timm's ``@register_model``: a new proxy or space is one file that
decorates its entry point; everything else (CLI, workers, tests) looks it up by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from knas_core.errors import InputError

T = TypeVar("T")
D = TypeVar("D", bound=Callable[..., Any])  # what a registering decorator decorates


class UnknownNameError(KeyError, InputError):
    """Raised for a name that is not registered; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want a plain sentence.
        return str(self.args[0])


class Registry(Generic[T]):
    """Ordered mapping from a unique name to a registered object."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item
        return item

    def remove(self, name: str) -> T:
        """Unregister ``name`` and return its item (e.g. a test's temporary proxy)."""
        self.get(name)  # the same error for an unknown name
        return self._items.pop(name)

    def decorator(self, name: str, make: Callable[[D], T]) -> Callable[[D], D]:
        """Return a decorator that registers ``make(fn)`` under ``name`` and returns ``fn``."""

        def wrap(fn: D) -> D:
            self.add(name, make(fn))
            return fn

        return wrap

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; available: {', '.join(self._items)}"
            ) from None

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
