"""The interface every search space implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

from torch import nn

from knas_core.errors import InputError


class InvalidArchitectureError(ValueError, InputError):
    """An architecture string that does not belong to the space; the message names the problem."""


class SearchSpace(ABC):
    """A finite cell-based search space: architecture strings, indices and networks."""

    name: str

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
