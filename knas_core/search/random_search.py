"""Random search (Li & Talwalkar, UAI 2019), the baseline every view compares against: evaluate
``topk`` uniformly sampled architectures (the same evaluation budget as KNAS) and keep the best.
No proxy is used."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from knas_core.search import register_strategy
from knas_core.search.base import ProgressStage, SearchContext, Strategy


@register_strategy("random")
@dataclass
class RandomSearch(Strategy):
    topk: int = 10
    samples: int = 0  # unused: random search spends its budget on evaluations only
    name: str = "random"
    uses_proxies: ClassVar[bool] = False

    def search(self, ctx: SearchContext) -> tuple[str, float | None, list[str]]:
        archs = ctx.space.sample(self.topk, ctx.seed)
        results = []
        for done, arch in enumerate(archs, start=1):
            results.append((ctx.evaluate(arch), -done, arch))
            ctx.report(ProgressStage.EVALUATE, done, len(archs))
        _, _, arch = max(results)
        return arch, None, archs
