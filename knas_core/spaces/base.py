"""The interface every search space implements.

A space registered by a plugin (``@register_space``, see :mod:`knas_core.plugins`) implements
the abstract methods; :attr:`SearchSpace.has_benchmark` and :meth:`SearchSpace.mutate` are
optional and say what else a search may do with it (look-up evaluation, regularised evolution).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar

from torch import nn

from knas_core.errors import InputError

if TYPE_CHECKING:
    import numpy as np


class InvalidArchitectureError(ValueError, InputError):
    """An architecture string that does not belong to the space; the message names the problem."""


class SearchSpace(ABC):
    """A finite search space: architecture strings, indices and networks.

    ``get_space(name)`` builds a space with no arguments, so a constructor's arguments must all
    have defaults.
    """

    name: str
    #: Whether the official indices are the rows of the benchmark table
    #: (:class:`knas_core.groundtruth.GroundTruth`, NAS-Bench-201's accuracies): only then can a
    #: search evaluate by look-up and report 200-epoch test accuracies and percentiles. Such a
    #: space takes ``archs_in_index_order`` and ``data_dir`` (see :func:`open_space`). A space
    #: without one is searched with training as the evaluation (``eval: train``).
    has_benchmark: ClassVar[bool] = False

    @property
    @abstractmethod
    def size(self) -> int:
        """Number of distinct architectures."""

    @abstractmethod
    def validate(self, arch: str) -> str:
        """Return the canonical string of ``arch`` or raise :class:`InvalidArchitectureError`."""

    @abstractmethod
    def arch_at(self, index: int) -> str:
        """Architecture string at the space's official ``index``."""

    @abstractmethod
    def index_of(self, arch: str) -> int:
        """Official index of ``arch``."""

    @abstractmethod
    def enumerate(self) -> Iterator[str]:
        """Every architecture, in official index order."""

    @abstractmethod
    def sample(self, n: int, seed: int) -> list[str]:
        """``n`` distinct architectures drawn uniformly; the same seed gives the same list."""

    @abstractmethod
    def build_model(self, arch: str, num_classes: int, **options: object) -> nn.Module:
        """A freshly initialised network for ``arch``."""

    def sample_indices(self, n: int, seed: int) -> Sequence[int]:
        return [self.index_of(a) for a in self.sample(n, seed)]

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        """A different architecture one small step away from ``arch`` (regularised evolution
        mutates its parents with it), drawn with ``rng``. Optional: a space without it cannot
        be searched by evolution (:attr:`can_mutate`)."""
        raise NotImplementedError(f"search space {self.name!r} defines no mutation")

    @property
    def can_mutate(self) -> bool:
        """Whether the space overrides :meth:`mutate`."""
        return type(self).mutate is not SearchSpace.mutate
