"""KNAS search (Xu et al., ICML 2021, Sec. 4 / Algorithm 1): sample ``N`` architectures, score
them with the gradient kernel at initialisation, evaluate only the top-``k``, keep the best.
The paper's NAS-Bench-201 setting: N = 300 samples (in its released code), k = 10."""

from __future__ import annotations

from dataclasses import dataclass

from knas_core.search import register_strategy
from knas_core.search.base import SearchContext, Strategy, evaluate_top_k


@register_strategy("knas")
@dataclass
class KNASSearch(Strategy):
    samples: int = 300
    topk: int = 10
    name: str = "knas"

    def search(self, ctx: SearchContext) -> tuple[str, float | None, list[str]]:
        archs = ctx.space.sample(self.samples, ctx.seed)
        scores = ctx.score(archs)
        return evaluate_top_k(ctx, archs, scores, self.topk)
