"""Regularised (ageing) evolution (Real et al., AAAI 2019, Algorithm 1) with a training-free
fitness: the proxy (or ensemble) score replaces trained accuracy, and only the ``topk`` best
scored architectures of the whole history are evaluated at the end.

Population ``P`` initialised at random; each cycle samples ``S`` members, mutates the best
(one edge gets another operation), adds the child and removes the oldest member.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from knas_core.search import register_strategy
from knas_core.search.base import SearchContext, Strategy, evaluate_top_k
from knas_core.spaces.nb201 import OPS, format_arch, parse_arch


def mutate(arch: str, rng: np.random.Generator) -> str:
    """Change the operation on one uniformly chosen edge to a different one."""
    ops = list(parse_arch(arch))
    edge = int(rng.integers(len(ops)))
    ops[edge] = str(rng.choice([o for o in OPS if o != ops[edge]]))
    return format_arch(ops)


@register_strategy("evolution")
@dataclass
class RegularisedEvolution(Strategy):
    samples: int = 300      # architectures scored in total (population + children)
    topk: int = 10
    population: int = 20
    tournament: int = 5
    name: str = "evolution"

    def search(self, ctx: SearchContext) -> tuple[str, float | None, list[str]]:
        rng = np.random.default_rng(ctx.seed)
        size = min(self.population, self.samples)
        start = ctx.space.sample(size, ctx.seed)
        fitness = dict(zip(start, ctx.score(start), strict=True))
        alive = deque(start)
        history = list(start)
        while len(history) < self.samples:
            picks = rng.choice(len(alive), size=min(self.tournament, len(alive)), replace=False)
            contenders = [alive[int(i)] for i in picks]
            parent = max(contenders, key=lambda a: -np.inf if (f := fitness[a]) is None else f)
            child = mutate(parent, rng)
            if child not in fitness:
                fitness[child] = ctx.score([child])[0]
                history.append(child)
                ctx.report("score", len(history), self.samples)
            alive.append(child)
            alive.popleft()
        return evaluate_top_k(ctx, history, [fitness[a] for a in history], self.topk)
