"""A plugin search space for the plugin tests: 8 tiny networks, ``mlp-W`` or ``conv-W`` with width
``W`` in 8, 16, 32, 64 (entry point ``knas.spaces``: ``toy = tests.plugins.toy_space``).

It has no benchmark table, so it is searched with ``eval: train``; it defines a mutation (the
other kind, or the next width), so regularised evolution can search it too.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
from torch import nn

from knas_core.spaces import register_space
from knas_core.spaces.base import InvalidArchitectureError, SearchSpace

KINDS = ("mlp", "conv")
WIDTHS = (8, 16, 32, 64)
ARCHS = tuple(f"{kind}-{width}" for kind, width in itertools.product(KINDS, WIDTHS))


@register_space("toy")
class ToySpace(SearchSpace):
    """``mlp-W``: pool to 4x4, one hidden layer of ``W`` units; ``conv-W``: one 3x3 convolution
    with ``W`` channels, global pooling, a linear classifier. Any image size, 3 channels."""

    name = "toy"

    def __init__(self, **options: object) -> None:  # takes no option; accepts the runs' ones
        del options

    @property
    def size(self) -> int:
        return len(ARCHS)

    def validate(self, arch: str) -> str:
        if not isinstance(arch, str) or arch.strip() not in ARCHS:
            raise InvalidArchitectureError(f"{arch!r} is not a toy architecture; valid: {', '.join(ARCHS)}")
        return arch.strip()

    def arch_at(self, index: int) -> str:
        if not 0 <= int(index) < len(ARCHS):
            raise InvalidArchitectureError(f"index {index} out of range 0..{len(ARCHS) - 1}")
        return ARCHS[int(index)]

    def index_of(self, arch: str) -> int:
        return ARCHS.index(self.validate(arch))

    def enumerate(self) -> Iterator[str]:
        return iter(ARCHS)

    def sample(self, n: int, seed: int) -> list[str]:
        if not 0 < n <= len(ARCHS):
            raise ValueError(f"can sample 1..{len(ARCHS)} architectures, not {n}")
        return [ARCHS[int(i)] for i in np.random.default_rng(seed).permutation(len(ARCHS))[:n]]

    def build_model(self, arch: str, num_classes: int, **options: object) -> nn.Module:
        """The network of ``arch``; ``options`` (a search's ``C``, ``N``) are ignored."""
        kind, width = self.validate(arch).split("-")
        w = int(width)
        if kind == "mlp":
            return nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(3 * 16, w), nn.ReLU(),
                                 nn.Linear(w, num_classes))
        return nn.Sequential(nn.Conv2d(3, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(w, num_classes))

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        """The other kind at the same width, or the same kind at a neighbouring width."""
        kind, width = self.validate(arch).split("-")
        k = WIDTHS.index(int(width))
        steps = [f"{KINDS[1 - KINDS.index(kind)]}-{width}"]
        steps += [f"{kind}-{WIDTHS[j]}" for j in (k - 1, k + 1) if 0 <= j < len(WIDTHS)]
        return steps[int(rng.integers(len(steps)))]
