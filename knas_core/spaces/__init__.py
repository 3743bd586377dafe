"""Search spaces, looked up by name: ``get_space("nb201")``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from knas_core.registry import Registry
from knas_core.spaces.base import InvalidArchitectureError, SearchSpace

SPACES: Registry[Callable[..., SearchSpace]] = Registry("search space")
S = TypeVar("S", bound=SearchSpace)


def register_space(name: str) -> Callable[[type[S]], type[S]]:
    """Class decorator: make a :class:`SearchSpace` subclass available by ``name``."""
    def wrap(cls: type[S]) -> type[S]:
        SPACES.add(name, cls)
        return cls

    return wrap


def get_space(name: str, **options: Any) -> SearchSpace:
    """Instantiate the space registered as ``name``."""
    return SPACES.get(name)(**options)


from knas_core.spaces import nb201  # noqa: E402,F401  (registers the built-in space)

__all__ = ["SPACES", "InvalidArchitectureError", "SearchSpace", "get_space", "register_space"]
