"""Search spaces, looked up by name: ``get_space("nb201")``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from knas_core.registry import Registry
from knas_core.spaces.base import InvalidArchitectureError, SearchSpace

SPACES: Registry[Callable[..., SearchSpace]] = Registry("search space")


def register_space(name: str) -> Callable[[type], type]:
    """Class decorator: make a :class:`SearchSpace` subclass available by ``name``."""
    return SPACES.decorator(name, lambda cls: cls)


def get_space(name: str, **options: Any) -> SearchSpace:
    """Instantiate the space registered as ``name``."""
    return SPACES.get(name)(**options)


from knas_core.spaces import nb201  # noqa: E402,F401  (registers the built-in space)

__all__ = ["SPACES", "InvalidArchitectureError", "SearchSpace", "get_space", "register_space"]
