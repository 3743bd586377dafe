"""Readable renderings of a program: an infix formula and a tree (nodes and edges) to draw."""

from __future__ import annotations

from dataclasses import dataclass

from knas_core.discovery.language import KINDS, parse
from knas_core.optional import missing_extra

try:
    from deap import gp
except ImportError as exc:
    raise missing_extra(exc, "discovery",
                        "proxy discovery (knas evolve, the Proxy lab, promoted proxies)") from None

_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
_WRAP = {"abs": ("|", "|"), "frob": ("||", "||_F"), "l1": ("||", "||_1")}


def _leaf(name: str) -> str:
    kind, _, tensor = name.partition("_")
    if tensor.endswith("_grad"):
        return f"dL/d{tensor[:-5]}[{kind}]"
    return f"{tensor}[{kind}]"


def readable(program: gp.PrimitiveTree | str, kinds: tuple[str, ...] = KINDS) -> str:
    """Infix form, e.g. ``||sigmoid(logdet(sign(dL/dA[data])))||_F`` for the EZNAS program.

    Leaves read ``T[kind]`` (``A`` ReLU input, ``X`` conv input, ``Y`` BN output, ``W`` conv
    weight; ``dL/dT`` the gradient of the sum of logits); the value is averaged over blocks.
    """
    tree = parse(program, kinds) if isinstance(program, str) else program

    def render(i: int) -> tuple[str, int]:
        node = tree[i]
        if isinstance(node, gp.Terminal):
            return _leaf(str(node.value)), i + 1
        args, j = [], i + 1
        for _ in range(node.arity):
            text, j = render(j)
            args.append(text)
        if node.name in _INFIX:
            return f"({args[0]} {_INFIX[node.name]} {args[1]})", j
        if node.name in _WRAP:
            left, right = _WRAP[node.name]
            return f"{left}{args[0]}{right}", j
        return f"{node.name}({', '.join(args)})", j

    return render(0)[0]


@dataclass(frozen=True)
class TreeLayout:
    """Nodes (label, x, y) and edges (parent, child) of a program, root at the top (y = 0)."""

    labels: list[str]
    x: list[float]
    y: list[float]
    edges: list[tuple[int, int]]


def tree_layout(program: gp.PrimitiveTree | str, kinds: tuple[str, ...] = KINDS) -> TreeLayout:
    """A tidy layout: leaves get consecutive x positions, a parent sits above its children."""
    tree = parse(program, kinds) if isinstance(program, str) else program
    labels: list[str] = []
    xs: list[float] = []
    ys: list[float] = []
    edges: list[tuple[int, int]] = []
    next_leaf = [0.0]

    def place(i: int, depth: int) -> tuple[int, int]:
        node = tree[i]
        me = len(labels)
        labels.append(_leaf(str(node.value)) if isinstance(node, gp.Terminal) else node.name)
        xs.append(0.0)
        ys.append(-float(depth))
        j = i + 1
        if isinstance(node, gp.Terminal) or node.arity == 0:
            xs[me] = next_leaf[0]
            next_leaf[0] += 1.0
            return me, j
        kids = []
        for _ in range(node.arity):
            child, j = place(j, depth + 1)
            kids.append(child)
            edges.append((me, child))
        xs[me] = sum(xs[k] for k in kids) / len(kids)
        return me, j

    place(0, 0)
    return TreeLayout(labels, xs, ys, edges)
