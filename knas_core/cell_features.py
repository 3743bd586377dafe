"""Encodings of a NAS-Bench-201 cell for performance predictors (the few-shot calibration of
:mod:`knas_core.calibration` reads them): the one-hot operation encoding, the path encoding, and
what the cell computes once its dead edges are left out.

All take the architecture string (``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``) and return numbers;
nothing here builds a network.
"""

from __future__ import annotations

import itertools

import numpy as np

from knas_core.spaces.nb201 import EDGES, OPS, format_arch, parse_arch


def cell_encoding(arch: str) -> np.ndarray:
    """The one-hot operation encoding of a NAS-Bench-201 cell: 30 zeros and ones, edge-major
    (edge ``e`` in :data:`~knas_core.spaces.nb201.EDGES` order, operation ``o`` in ``OPS``
    order at position ``5 e + o``).

    >>> cell_encoding("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")[:10]
    array([0., 0., 0., 1., 0., 1., 0., 0., 0., 0.])
    """
    out = np.zeros(len(EDGES) * len(OPS))
    for edge, op in enumerate(parse_arch(arch)):
        out[edge * len(OPS) + OPS.index(op)] = 1.0
    return out


def encoding_names() -> list[str]:
    """Names of :func:`cell_encoding`'s columns, e.g. ``0->1:none``."""
    return [f"{src}->{dst}:{op}" for src, dst in EDGES for op in OPS]


#: The cell's input->output paths (node 0 to node 3) as edge indices into ``EDGES``:
#: 0->3, 0->1->3, 0->2->3, 0->1->2->3.
PATHS: tuple[tuple[int, ...], ...] = tuple(
    tuple(EDGES.index(e) for e in path)
    for path in (((0, 3),), ((0, 1), (1, 3)), ((0, 2), (2, 3)), ((0, 1), (1, 2), (2, 3))))
#: Operations that carry a signal (all but ``none``) and the parameterised ones.
LIVE_OPS: tuple[str, ...] = tuple(op for op in OPS if op != "none")
CONVS: tuple[str, ...] = ("nor_conv_1x1", "nor_conv_3x3")
POOL = "avg_pool_3x3"


def live_paths(arch: str) -> list[tuple[str, ...]]:
    """The operations along each input->output path of ``arch`` with no ``none`` edge (in
    :data:`PATHS` order, the dead ones left out). A cell with none is cut off: its output is
    zero whatever the input, and it trains to chance accuracy."""
    ops = parse_arch(arch)
    return [seq for seq in (tuple(ops[e] for e in path) for path in PATHS) if "none" not in seq]


def live_edges(arch: str) -> tuple[bool, ...]:
    """For each edge (``EDGES`` order), whether it lies on a live input->output path: the
    operation of any other edge never reaches the output (e.g. ``1->2`` when ``2->3`` is none),
    so it does not change what the cell computes."""
    ops = parse_arch(arch)
    live = [False] * len(EDGES)
    for path in PATHS:
        if all(ops[e] != "none" for e in path):
            for e in path:
                live[e] = True
    return tuple(live)


def path_encoding(arch: str) -> np.ndarray:
    """The path encoding of White et al., "BANANAS: Bayesian optimization with neural
    architectures for neural architecture search" (AAAI 2021): one indicator per sequence of
    operations along a live input->output path, paths of 1, 2 and 3 edges
    (4 + 16 + 64 = 84 columns, :func:`path_names` order: by length, then operations in
    :data:`LIVE_OPS` order, first edge slowest). The two 2-edge paths share their columns."""
    out = np.zeros(len(_PATH_COLUMNS))
    for seq in live_paths(arch):
        out[_PATH_COLUMNS[seq]] = 1.0
    return out


def path_names() -> list[str]:
    """Names of :func:`path_encoding`'s columns, e.g. ``path:skip_connect>nor_conv_3x3``."""
    return ["path:" + ">".join(seq) for seq in _PATH_COLUMNS]


_PATH_COLUMNS: dict[tuple[str, ...], int] = {
    seq: i for i, seq in enumerate(seq for n in (1, 2, 3) for seq in itertools.product(LIVE_OPS, repeat=n))}


def cell_structure(arch: str) -> np.ndarray:
    """What a NAS-Bench-201 cell computes, dead edges left out (:func:`live_edges`): 44 numbers,

    * how many live edges carry each operation of :data:`LIVE_OPS` (4),
    * of the live paths (:func:`live_paths`): whether there is none (the cell is cut off), how
      many there are, the most convolutions on one, the most 3x3 convolutions on one, the fewest
      convolutions on one and the most edges on one (6; 0 for a cut-off cell),
    * how the signal can pass without being transformed (4; 0 for a cut-off cell): how many live
      paths hold no convolution; whether one is skip connections only (an identity path, as
      the shortcut of a residual block: He et al., "Deep residual learning for image
      recognition", CVPR 2016); whether every live path pools, and whether every one *starts*
      with a pool (no path carries the input's unblurred features: a convolution then never
      sees them),
    * the one-hot encoding of :func:`cell_encoding` with every dead edge read as ``none`` (30),

    so that cells computing the same function (they differ only in dead edges) look the same.
    Convolutions in series are what the known good cells of the space stack (Dong & Yang,
    "NAS-Bench-201", ICLR 2020, Fig. 6); the counts on live edges and the one-hot are the
    encodings of White et al., "How powerful are performance predictors in neural architecture
    search?" (NeurIPS 2021), restricted to what reaches the output.

    >>> cell_structure("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")[:14]
    array([1., 0., 0., 0., 0., 1., 0., 0., 0., 1., 1., 1., 0., 0.])
    """
    ops = parse_arch(arch)
    live = live_edges(arch)
    counts = [sum(1 for e, op in enumerate(ops) if live[e] and op == name) for name in LIVE_OPS]
    paths = live_paths(arch)
    convs = [sum(op in CONVS for op in seq) for seq in paths]
    conv3 = [seq.count("nor_conv_3x3") for seq in paths]
    stats = [float(not paths), len(paths), max(convs, default=0), max(conv3, default=0),
             min(convs, default=0), max((len(seq) for seq in paths), default=0)]
    passing = [sum(c == 0 for c in convs), float(any(set(seq) == {"skip_connect"} for seq in paths)),
               float(bool(paths) and all(POOL in seq for seq in paths)),
               float(bool(paths) and all(seq[0] == POOL for seq in paths))]
    onehot = cell_encoding(format_arch([op if live[e] else "none" for e, op in enumerate(ops)]))
    return np.concatenate([np.asarray(counts + stats + passing, dtype=np.float64), onehot])


#: Columns of :func:`cell_structure` in its summary part (the rest is the live one-hot).
STRUCTURE_SUMMARY = 14


def summary_and_paths(arch: str) -> np.ndarray:
    """The cell read by its paths: the summary of :func:`cell_structure` (its first
    :data:`STRUCTURE_SUMMARY` columns) and the path encoding of :func:`path_encoding`,
    ``14 + 84 = 98`` numbers. Unlike the one-hot, both are the same for two cells that are one
    graph with nodes 1 and 2 swapped (when edge 1->2 is none), as they are for two cells that
    differ only in dead edges."""
    return np.concatenate([cell_structure(arch)[:STRUCTURE_SUMMARY], path_encoding(arch)])


def structure_names() -> list[str]:
    """Names of :func:`cell_structure`'s columns."""
    return ([f"live {op}" for op in LIVE_OPS]
            + ["cut off", "live paths", "most convs on a path", "most 3x3 convs on a path",
               "fewest convs on a path", "longest path", "conv-free paths", "identity path",
               "every path pools", "every path starts with a pool"]
            + [f"live {name}" for name in encoding_names()])


def summary_and_path_names() -> list[str]:
    """Names of :func:`summary_and_paths`'s columns."""
    return structure_names()[:STRUCTURE_SUMMARY] + path_names()


__all__ = ["CONVS", "LIVE_OPS", "PATHS", "POOL", "STRUCTURE_SUMMARY", "cell_encoding", "cell_structure",
           "encoding_names", "live_edges", "live_paths", "path_encoding", "path_names", "structure_names",
           "summary_and_path_names", "summary_and_paths"]
