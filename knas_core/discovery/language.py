"""The program language of proxy discovery: DEAP expression trees over per-block tensors
(EZNAS, Akhauri et al., NeurIPS 2022, Sec. 3.1 and Table 1).

A program maps the tensors of one ReLU-Conv-BN block (the leaves, see
:mod:`knas_core.discovery.tensors`) to a tensor; its mean is the block's value, and the score of
an architecture is the mean of its blocks' finite values (EZNAS aggregates layers the same
way). Primitives:

* elementwise: ``add sub mul div neg abs log exp sign sigmoid relu sqrt square normalise``;
* reductions: ``mean frob l1 logdet eig_ratio`` (``logdet`` maps ``(..., n, n) -> (...)``);
* pairwise: ``cosine kl hamming`` (two tensors of equal size -> scalar).

Numerical safety: ``log``/``sqrt``/``div`` are protected, ``exp`` clips its argument, and a
primitive that raises (e.g. shapes that do not broadcast) yields NaN. Non-finite block values
are dropped from the mean and counted in :class:`Evaluation`.

The published EZNAS program is :data:`EZNAS_PROGRAM`; evaluated here it equals the ``eznas``
proxy (tests/test_discovery.py).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch

from knas_core.discovery.tensors import KINDS, Block, leaf_names
from knas_core.errors import InputError
from knas_core.optional import missing_extra

try:
    from deap import gp
except ImportError as exc:
    raise missing_extra(exc, "discovery",
                        "proxy discovery (knas evolve, the Proxy lab, promoted proxies)") from None

EPS = 1e-8
EXP_CLIP = 30.0
EZNAS_PROGRAM = "frob(sigmoid(logdet(sign(data_A_grad))))"
_NAN = torch.tensor(float("nan"))


def _safe(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    def wrapped(*args: torch.Tensor) -> torch.Tensor:
        try:
            return fn(*args)
        except (RuntimeError, ValueError, IndexError):
            return _NAN
    wrapped.__name__ = fn.__name__
    wrapped.__doc__ = fn.__doc__
    return wrapped


# --- elementwise ----------------------------------------------------------------------------------

def div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a / b with |b| floored at 1e-8 (sign kept)."""
    return a / torch.where(b >= 0, b.clamp(min=EPS), b.clamp(max=-EPS))


def log(a: torch.Tensor) -> torch.Tensor:
    """log(|a| + 1e-8)."""
    return torch.log(a.abs() + EPS)


def exp(a: torch.Tensor) -> torch.Tensor:
    """exp(min(a, 30))."""
    return torch.exp(a.clamp(max=EXP_CLIP))


def sqrt(a: torch.Tensor) -> torch.Tensor:
    """sqrt(|a|)."""
    return torch.sqrt(a.abs())


def square(a: torch.Tensor) -> torch.Tensor:
    return a * a


def normalise(a: torch.Tensor) -> torch.Tensor:
    """(a - mean(a)) / (std(a) + 1e-8) over all entries."""
    if a.numel() < 2:
        return torch.zeros_like(a)
    return (a - a.mean()) / (a.std() + EPS)


# --- reductions -----------------------------------------------------------------------------------

def mean(a: torch.Tensor) -> torch.Tensor:
    return a.mean()


def frob(a: torch.Tensor) -> torch.Tensor:
    """Frobenius (L2) norm of all entries."""
    return torch.linalg.vector_norm(a)


def l1(a: torch.Tensor) -> torch.Tensor:
    return a.abs().sum()


def logdet(a: torch.Tensor) -> torch.Tensor:
    """log det over the last two (square) dims, in float64: ``(..., n, n) -> (...)``; NaN (negative
    determinant) becomes 0 as in the EZNAS release; a singular map gives -inf (kept)."""
    if a.dim() < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError("logdet needs square matrices")
    return torch.nan_to_num(torch.logdet(a.double()), nan=0.0, posinf=float("inf"), neginf=float("-inf"))


def eig_ratio(a: torch.Tensor) -> torch.Tensor:
    """Largest over smallest eigenvalue of the Gram matrix ``M M^T`` of ``a`` as ``(shape[0], -1)``
    (the condition number of the per-sample/channel correlation), floored at 1e-8."""
    m = a.reshape(a.shape[0], -1).double() if a.dim() else a.reshape(1, 1).double()
    ev = torch.linalg.eigvalsh(m @ m.T).abs()
    return ev.max() / ev.min().clamp(min=EPS)


# --- pairwise -------------------------------------------------------------------------------------

def _pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if a.numel() != b.numel():
        raise ValueError("pairwise primitives need tensors of equal size")
    return a.reshape(-1), b.reshape(-1)


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of the flattened tensors."""
    x, y = _pair(a, b)
    return (x @ y) / (torch.linalg.vector_norm(x) * torch.linalg.vector_norm(y) + EPS)


def kl(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """KL(softmax(a) || softmax(b)) over the flattened entries."""
    x, y = _pair(a, b)
    return torch.sum(torch.softmax(x, 0) * (torch.log_softmax(x, 0) - torch.log_softmax(y, 0)))


def hamming(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Share of entries whose positivity differs (binary codes ``x > 0``)."""
    x, y = _pair(a, b)
    return ((x > 0) != (y > 0)).float().mean()


UNARY: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "neg": torch.neg, "abs": torch.abs, "log": log, "exp": exp, "sign": torch.sign,
    "sigmoid": torch.sigmoid, "relu": torch.relu, "sqrt": sqrt, "square": square,
    "normalise": normalise, "mean": mean, "frob": frob, "l1": l1, "logdet": logdet,
    "eig_ratio": eig_ratio,
}
BINARY: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": div,
    "cosine": cosine, "kl": kl, "hamming": hamming,
}


@lru_cache(maxsize=8)
def primitive_set(kinds: tuple[str, ...] = KINDS) -> gp.PrimitiveSet:
    """The DEAP primitive set: the primitives above; arguments are the leaves of ``kinds``."""
    leaves = leaf_names(kinds)
    pset = gp.PrimitiveSet("PROXY", len(leaves))
    for name, fn in UNARY.items():
        pset.addPrimitive(_safe(fn), 1, name=name)
    for name, fn2 in BINARY.items():
        pset.addPrimitive(_safe(fn2), 2, name=name)
    pset.renameArguments(**{f"ARG{i}": leaf for i, leaf in enumerate(leaves)})
    return pset


class ProgramError(ValueError, InputError):
    """A formula that is not a program of the language (the message says why)."""


def parse(formula: str, kinds: Sequence[str] = KINDS) -> gp.PrimitiveTree:
    """Parse a program string such as :data:`EZNAS_PROGRAM`."""
    try:
        return gp.PrimitiveTree.from_string(formula.strip(), primitive_set(tuple(kinds)))
    except (TypeError, KeyError, IndexError, AttributeError, ValueError) as exc:
        raise ProgramError(f"not a proxy program: {formula!r} ({type(exc).__name__}: {exc})") from None


def used_kinds(tree: gp.PrimitiveTree | str) -> tuple[str, ...]:
    """The input kinds whose leaves appear in ``tree`` (so a proxy runs only those passes)."""
    text = str(tree)
    return tuple(k for k in KINDS if f"{k}_" in text)


@dataclass
class Evaluation:
    """Scores of one program over architectures, with non-finite counts."""

    scores: list[float]
    nonfinite_blocks: int = 0
    failed_archs: int = 0


class Program:
    """A compiled program: ``Program(tree)(blocks) -> float`` (NaN when no block is finite)."""

    def __init__(self, tree: gp.PrimitiveTree | str, kinds: Sequence[str] = KINDS) -> None:
        self.kinds = tuple(kinds)
        self.tree = parse(tree, kinds) if isinstance(tree, str) else tree
        self.leaves = leaf_names(self.kinds)
        self.fn = gp.compile(self.tree, primitive_set(self.kinds))
        self.nonfinite_blocks = 0

    def __str__(self) -> str:
        return str(self.tree)

    def block_value(self, block: Block) -> float:
        """The program's value on one block (mean of its output); may be NaN or inf."""
        with torch.no_grad():
            out = self.fn(*(block.get(leaf, _NAN) for leaf in self.leaves))
        if not isinstance(out, torch.Tensor):
            return float(out)
        return float(out.mean()) if out.numel() else math.nan

    def __call__(self, blocks: Sequence[Block]) -> float:
        values = []
        for block in blocks:
            v = self.block_value(block)
            if math.isfinite(v):
                values.append(v)
            else:
                self.nonfinite_blocks += 1
        return float(sum(values) / len(values)) if values else math.nan

    def evaluate(self, archs: Sequence[Sequence[Block] | str]) -> Evaluation:
        """Scores of every architecture (an ``str`` entry is a failed gather: NaN)."""
        self.nonfinite_blocks = 0
        scores = [math.nan if isinstance(b, str) else self(b) for b in archs]
        return Evaluation(scores, self.nonfinite_blocks, sum(1 for s in scores if not math.isfinite(s)))


def evaluate_many(programs: Sequence[Program], archs: Sequence[Sequence[Block] | str]) -> list[Evaluation]:
    """Every program on every architecture, architecture by architecture: ``archs[j]`` is read
    once (it may load from disk), so memory holds one architecture's tensors at a time."""
    for p in programs:
        p.nonfinite_blocks = 0
    scores: list[list[float]] = [[] for _ in programs]
    for j in range(len(archs)):
        blocks = archs[j]
        for k, p in enumerate(programs):
            scores[k].append(math.nan if isinstance(blocks, str) else p(blocks))
    return [Evaluation(sc, p.nonfinite_blocks, sum(1 for v in sc if not math.isfinite(v)))
            for p, sc in zip(programs, scores)]
