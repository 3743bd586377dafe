"""Regularised (ageing) evolution (Real et al., AAAI 2019, Algorithm 1) with a training-free
fitness: the proxy (or ensemble) score replaces trained accuracy, and only the ``topk`` best
scored architectures of the whole history are evaluated at the end.

Population ``P`` initialised at random; each cycle samples ``S`` members, mutates the best
(the space's :meth:`~knas_core.spaces.base.SearchSpace.mutate`: in NAS-Bench-201 one edge gets
another operation), adds the child and removes the oldest member.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from knas_core.search import register_strategy
from knas_core.search.base import ProgressStage, SearchContext, Strategy, evaluate_top_k
from knas_core.spaces.base import SearchSpace
from knas_core.spaces.nb201 import mutate  # noqa: F401 - NAS-Bench-201's mutation, importable here as before


@register_strategy("evolution")
@dataclass
class RegularisedEvolution(Strategy):
    samples: int = 300      # architectures scored in total (population + children)
    topk: int = 10
    population: int = 20
    tournament: int = 5
    name: str = "evolution"

    @classmethod
    def check_space(cls, space: SearchSpace) -> None:
        if not space.can_mutate:
            raise ValueError(f"evolution mutates architectures, and space {space.name!r} defines no "
                             "mutation (SearchSpace.mutate)")

    def search(self, ctx: SearchContext) -> tuple[str, float | None, list[str]]:
        rng = np.random.default_rng(ctx.seed)
        size = min(self.population, self.samples)
        start = ctx.space.sample(size, ctx.seed)
        fitness = dict(zip(start, ctx.score(start), strict=True))
        alive = deque(start)
        history = list(start)
        budget = min(self.samples, ctx.space.size)  # a small space runs out of new children
        while len(history) < budget:
            picks = rng.choice(len(alive), size=min(self.tournament, len(alive)), replace=False)
            contenders = [alive[int(i)] for i in picks]
            parent = max(contenders, key=lambda a: -np.inf if (f := fitness[a]) is None else f)
            child = ctx.space.mutate(parent, rng)
            if child not in fitness:
                fitness[child] = ctx.score([child])[0]
                history.append(child)
                ctx.report(ProgressStage.SCORE, len(history), budget)
            alive.append(child)
            alive.popleft()
        return evaluate_top_k(ctx, history, [fitness[a] for a in history], self.topk)
