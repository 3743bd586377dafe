"""Search spaces, looked up by name: ``get_space("nb201")``."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
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


def open_space(name: str, data_dir: str | os.PathLike[str] | None = None,
               archs_in_index_order: Sequence[str] | None = None) -> SearchSpace:
    """Space ``name`` as a run uses it. A space with a benchmark table
    (:attr:`SearchSpace.has_benchmark`) is given the table's index order: ``archs_in_index_order``
    when given, else read (lazily) from the table found through ``data_dir``. Any other space is
    built without options, as ``get_space(name)``."""
    space = get_space(name)
    if not space.has_benchmark:
        return space
    if archs_in_index_order is not None:
        return get_space(name, archs_in_index_order=archs_in_index_order)
    return get_space(name, data_dir=data_dir)


from knas_core.spaces import nb201  # noqa: E402,F401  (registers the built-in space)

__all__ = ["SPACES", "InvalidArchitectureError", "SearchSpace", "get_space", "open_space",
           "register_space"]
