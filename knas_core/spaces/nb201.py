"""The NAS-Bench-201 topology search space (Dong & Yang, ICLR 2020).

A cell is a DAG on 4 nodes; each of its 6 edges ``j -> i`` (``j < i``) carries one of
5 operations, so the space holds ``5**6 = 15,625`` cells. The canonical string lists,
for each node ``i = 1..3``, the edges entering it as ``op~j``::

    |op~0|+|op~0|op~1|+|op~0|op~1|op~2|

Official indices follow the benchmark's own order, which is not lexicographic; we take
it from the ground-truth table (``nb201/nb201_accuracies.csv`` or an official ``.pth``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from functools import cached_property

import numpy as np
from torch import nn

from knas_core.errors import ConfigError
from knas_core.spaces import register_space
from knas_core.spaces.base import InvalidArchitectureError, SearchSpace

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: Edges in string order, as (source node, target node).
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
NUM_EDGES = len(EDGES)


def parse_arch(arch: str) -> tuple[str, ...]:
    """Parse an architecture string into its 6 edge operations, in :data:`EDGES` order.

    Raises :class:`InvalidArchitectureError` naming what is wrong (shape, node, edge, op).
    """
    if not isinstance(arch, str):
        raise InvalidArchitectureError(f"architecture must be a string, got {type(arch).__name__}")
    text = arch.strip()
    nodes = text.split("+")
    if len(nodes) != 3:
        raise InvalidArchitectureError(
            f"{arch!r}: expected 3 node groups joined by '+', found {len(nodes)}"
            " (form: |op~0|+|op~0|op~1|+|op~0|op~1|op~2|)")
    ops: list[str] = []
    for node, group in enumerate(nodes, start=1):
        if not (group.startswith("|") and group.endswith("|")) or len(group) < 2:
            raise InvalidArchitectureError(
                f"{arch!r}: node {node} group {group!r} must start and end with '|'")
        edges = group[1:-1].split("|")
        if len(edges) != node:
            raise InvalidArchitectureError(
                f"{arch!r}: node {node} must have {node} incoming edge(s), found {len(edges)}")
        for source, edge in enumerate(edges):
            op, sep, src = edge.partition("~")
            if not sep or not src.isdigit():
                raise InvalidArchitectureError(
                    f"{arch!r}: edge {edge!r} into node {node} must look like 'op~{source}'")
            if int(src) != source:
                raise InvalidArchitectureError(
                    f"{arch!r}: edge {edge!r} into node {node} must come from node {source}, "
                    f"not {src}")
            if op not in OPS:
                raise InvalidArchitectureError(
                    f"{arch!r}: unknown operation {op!r}; valid: {', '.join(OPS)}")
            ops.append(op)
    return tuple(ops)


def format_arch(ops: Sequence[str]) -> str:
    """Inverse of :func:`parse_arch`: 6 edge operations -> canonical string."""
    if len(ops) != NUM_EDGES:
        raise InvalidArchitectureError(f"need {NUM_EDGES} operations, got {len(ops)}")
    for op in ops:
        if op not in OPS:
            raise InvalidArchitectureError(f"unknown operation {op!r}; valid: {', '.join(OPS)}")
    groups, k = [], 0
    for node in (1, 2, 3):
        groups.append("|" + "|".join(f"{ops[k + j]}~{j}" for j in range(node)) + "|")
        k += node
    return "+".join(groups)


def all_archs_lexicographic() -> Iterator[str]:
    """Every cell in a fixed product order (independent of any benchmark file)."""
    for ops in itertools.product(OPS, repeat=NUM_EDGES):
        yield format_arch(ops)


def mutate(arch: str, rng: np.random.Generator) -> str:
    """Change the operation on one uniformly chosen edge to a different one."""
    ops = list(parse_arch(arch))
    edge = int(rng.integers(len(ops)))
    ops[edge] = str(rng.choice([o for o in OPS if o != ops[edge]]))
    return format_arch(ops)


@register_space("nb201")
class NB201Space(SearchSpace):
    """NAS-Bench-201 topology space.

    Args:
        archs_in_index_order: the official index order; loaded lazily from the
            ground-truth table (data look-up order, or ``data_dir``) when omitted.
        data_dir: explicit data root used to find the table.
    """

    name = "nb201"
    has_benchmark = True

    def __init__(self, archs_in_index_order: Sequence[str] | None = None,
                 data_dir: str | os.PathLike[str] | None = None) -> None:
        self._given = list(archs_in_index_order) if archs_in_index_order is not None else None
        self._data_dir = data_dir

    @property
    def size(self) -> int:
        return len(OPS) ** NUM_EDGES

    @cached_property
    def _order(self) -> list[str]:
        if self._given is None:
            from knas_core.groundtruth import GroundTruth

            self._given = GroundTruth.load(self._data_dir).archs
        order = [format_arch(parse_arch(a)) for a in self._given]
        if len(order) != self.size or len(set(order)) != self.size:
            raise ValueError(f"index order must list each of the {self.size} cells once")
        return order

    @cached_property
    def _index(self) -> dict[str, int]:
        return {a: i for i, a in enumerate(self._order)}

    def validate(self, arch: str) -> str:
        return format_arch(parse_arch(arch))

    def arch_at(self, index: int) -> str:
        if not 0 <= int(index) < self.size:
            raise InvalidArchitectureError(f"index {index} out of range 0..{self.size - 1}")
        return self._order[int(index)]

    def index_of(self, arch: str) -> int:
        return self._index[self.validate(arch)]

    def enumerate(self) -> Iterator[str]:
        return iter(self._order)

    def sample(self, n: int, seed: int) -> list[str]:
        if not 0 < n <= self.size:
            raise ConfigError(f"can sample 1..{self.size} architectures, not {n}")
        # A prefix of one seeded permutation: the first k of a larger sample are the sample of k.
        order = np.random.default_rng(seed).permutation(self.size)
        return [self.arch_at(int(i)) for i in order[:n]]

    def build_model(self, arch: str, num_classes: int, **options: object) -> nn.Module:
        from knas_core.models.nb201 import NB201Network

        return NB201Network(parse_arch(arch), num_classes=num_classes, **options)  # type: ignore[arg-type]

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        return mutate(arch, rng)
