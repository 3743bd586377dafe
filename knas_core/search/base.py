"""What a search strategy is: it spends a scoring budget and an evaluation budget on a space.

A strategy sees the world through a :class:`SearchContext`: ``score(archs)`` (a training-free
proxy or ensemble; higher is better, ``None`` for a failure) and ``evaluate(arch)`` (benchmark
look-up or real training; an accuracy in %). It returns a :class:`SearchResult` with the chosen
architecture and the best-so-far trace.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from knas_core.spaces.base import SearchSpace

ScoreFn = Callable[[Sequence[str]], list[float | None]]
EvaluateFn = Callable[[str], float]
ProgressFn = Callable[[str, int, int], None]  # (stage, done, total); stage: a ProgressStage


class ProgressStage(StrEnum):
    """The stages a search reports through its :data:`ProgressFn` (a member equals its value).

    ``score``: architectures scored so far of the scoring budget; ``evaluate``: top-k
    architectures evaluated (look-up or training); ``nasi``: optimisation steps of NASI's
    architecture parameters.
    """

    SCORE = "score"
    EVALUATE = "evaluate"
    NASI = "nasi"


@dataclass
class SearchContext:
    """What a strategy may use. ``batch(size, seed)`` gives data for strategies that need it
    (NASI's supernet); ``device`` is where they run."""

    space: SearchSpace
    score: ScoreFn
    evaluate: EvaluateFn
    seed: int = 0
    progress: ProgressFn | None = None
    batch: Callable[[int, int], Any] | None = None
    device: str = "cpu"

    def report(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)


@dataclass
class SearchResult:
    """The architecture a strategy chose and how it got there.

    ``trace`` holds one entry per evaluation: ``{"arch", "accuracy", "best_accuracy"}``.
    """

    strategy: str
    arch: str
    accuracy: float
    score: float | None
    scored: int
    evaluated: int
    seconds: float
    trace: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Strategy(ABC):
    """A search procedure; subclasses register with :func:`knas_core.search.register_strategy`."""

    name: str = ""
    #: Whether the strategy ranks architectures by the search's proxies (``proxy``/``proxies``);
    #: False for those that never call ``ctx.score`` (random search, NASI's supernet), whose
    #: configured proxy is then no part of what was searched.
    uses_proxies: ClassVar[bool] = True

    @classmethod
    def check_space(cls, space: SearchSpace) -> None:
        """Raise ``ValueError`` (its message says why) if this strategy cannot search ``space``;
        called when a search config is validated. Every space, by default."""
        return None

    @abstractmethod
    def search(self, ctx: SearchContext) -> tuple[str, float | None, list[str]]:
        """Return ``(chosen arch, its score or None, archs evaluated in order)``."""

    def run(self, ctx: SearchContext) -> SearchResult:
        start = time.perf_counter()
        evaluations: list[tuple[str, float]] = []
        scored = 0
        score_fn, evaluate_fn = ctx.score, ctx.evaluate

        def counting_score(archs: Sequence[str]) -> list[float | None]:
            nonlocal scored
            scored += len(archs)
            return score_fn(archs)

        def recording_evaluate(arch: str) -> float:
            acc = evaluate_fn(arch)
            evaluations.append((arch, acc))
            return acc

        ctx = SearchContext(ctx.space, counting_score, recording_evaluate, ctx.seed, ctx.progress,
                            ctx.batch, ctx.device)
        arch, score, _ = self.search(ctx)
        best = -float("inf")
        trace = []
        for a, acc in evaluations:
            best = max(best, acc)
            trace.append({"arch": a, "accuracy": acc, "best_accuracy": best})
        accuracy = dict(evaluations).get(arch)
        if accuracy is None:
            accuracy = recording_evaluate(arch)
            trace.append({"arch": arch, "accuracy": accuracy, "best_accuracy": max(best, accuracy)})
        return SearchResult(self.name, arch, accuracy, score, scored, len(evaluations),
                            time.perf_counter() - start, trace)


def top_k(archs: Sequence[str], scores: Sequence[float | None], k: int) -> list[tuple[str, float]]:
    """The ``k`` best-scored architectures (failures dropped), best first; ties keep input order."""
    ok = [(a, s) for a, s in zip(archs, scores, strict=True) if s is not None]
    ok.sort(key=lambda pair: pair[1], reverse=True)
    return ok[:k]


def evaluate_top_k(ctx: SearchContext, archs: Sequence[str], scores: Sequence[float | None],
                   k: int) -> tuple[str, float | None, list[str]]:
    """Evaluate the ``k`` best-scored architectures; the best evaluated wins (ties: better score).

    Returns ``(arch, its score, the archs evaluated)``, the :meth:`Strategy.search` contract.
    """
    best = top_k(archs, scores, k)
    if not best:
        raise RuntimeError("every architecture failed to score")
    results = []
    for done, (arch, score) in enumerate(best, start=1):
        results.append((ctx.evaluate(arch), -done, arch, score))
        ctx.report(ProgressStage.EVALUATE, done, len(best))
    _, _, arch, score = max(results)
    return arch, score, [a for a, _ in best]
