"""Run a strategy in-process: proxies or an ensemble as the score, look-up or training as the
evaluation, and the chosen architecture's benchmark accuracies and percentile as the report
(``None`` for a space without a benchmark table, which is searched with training)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from knas_core.groundtruth import DATASETS, GroundTruth
from knas_core.proxies import get_proxy
from knas_core.scoring import Scorer
from knas_core.search import SearchContext, get_strategy
from knas_core.search.base import ProgressFn, ProgressStage
from knas_core.search.config import SearchConfig
from knas_core.search.ensemble import log_rank_aggregate
from knas_core.spaces import SearchSpace, get_space, open_space


class ProxyScorer:
    """``score(archs)`` from one proxy or a log-rank ensemble of several.

    An ensemble ranks each new architecture against every architecture scored so far (the
    member values are kept), so strategies that score one architecture at a time (evolution)
    get comparable values. All members of one architecture are scored by one call, so they
    share its network and passes (:meth:`Scorer.score`). ``progress("score", done, expected)``
    follows every newly scored architecture (``expected``: the strategy's scoring budget, raised
    if a strategy scores more).
    """

    def __init__(self, scorer: Scorer, proxies: list[str],
                 score_many: Callable[[str, list[str]], dict[str, float | None]] | None = None,
                 progress: ProgressFn | None = None, expected: int = 0,
                 weights: Mapping[str, float] | None = None) -> None:
        if not proxies:
            raise ValueError("name at least one proxy")
        self.scorer, self.proxies = scorer, proxies
        self.progress, self.expected = progress, expected
        self.score_many = score_many or (
            lambda arch, names: {p: r.value for p, r in scorer.score(arch, names).results.items()})
        self.directions = {p: get_proxy(p).higher_is_better for p in proxies}
        self.weights = dict(weights or {})
        self.seen: dict[str, dict[str, float | None]] = {}

    def _member(self, arch: str) -> dict[str, float | None]:
        if arch not in self.seen:
            values = self.score_many(arch, list(self.proxies))
            self.seen[arch] = {p: values[p] for p in self.proxies}
            if self.progress is not None:
                done = len(self.seen)
                self.progress(ProgressStage.SCORE, done, max(done, self.expected))
        return self.seen[arch]

    def __call__(self, archs: Sequence[str]) -> list[float | None]:
        members = [self._member(a) for a in archs]
        if len(self.proxies) == 1:
            p = self.proxies[0]
            sign = 1.0 if self.directions[p] else -1.0
            return [None if (v := m[p]) is None else sign * v for m in members]
        pool = list(self.seen)
        combined = log_rank_aggregate({p: [self.seen[a][p] for a in pool] for p in self.proxies},
                                      self.directions, self.weights)
        lookup = dict(zip(pool, combined, strict=True))
        return [lookup[a] for a in archs]


@dataclass
class SearchRun:
    """One search in this process, as :class:`~knas_core.search.config.SearchConfig` says:
    ``knas search``, the worker task of strategies that run whole, and the benchmarks.

    ``config`` may be given as a mapping of its fields (validated here; raises
    :class:`~knas_core.errors.ConfigError`).
    Explicit ``archs`` set only the number of architectures scored (a strategy samples its own).
    """

    config: SearchConfig

    def __post_init__(self) -> None:
        self.config = SearchConfig.parse(self.config)

    def run(self, progress: ProgressFn | None = None,
            score_many: Callable[[Scorer, str, list[str]], dict[str, float | None]] | None = None,
            ) -> dict[str, Any]:
        """Search, then report ``arch``, ``index``, ``test_acc`` per dataset, ``percentile``...
        (``test_acc`` and ``percentile`` are None when the space has no benchmark table).

        ``score_many(scorer, arch, proxies) -> {proxy: value}`` replaces direct scoring (e.g. a
        database cache)."""
        cfg = self.config
        start = time.perf_counter()
        dataset = cfg.dataset
        truth: GroundTruth | None = None
        if get_space(cfg.space).has_benchmark:
            truth = GroundTruth.load(cfg.data_dir if cfg.data_source != "imagefolder" else None)
        space = open_space(cfg.space, archs_in_index_order=truth.archs if truth is not None else None)
        scorer = Scorer(dataset, space=space, batch_size=cfg.batch_size, seed=cfg.seed,
                        device=cfg.device, data_source=cfg.data_source, data_dir=cfg.data_dir,
                        model_options=cfg.model.as_dict())
        hook = (lambda arch, names: score_many(scorer, arch, names)) if score_many else None
        score = ProxyScorer(scorer, cfg.proxy_list(), hook, progress,
                            cfg.sample_count if cfg.strategy != "random" else 0, cfg.proxy_weights())
        ctx = SearchContext(space, score, self._evaluator(truth, space),
                            cfg.seed, progress, scorer.source.batch, str(scorer.device))
        result = get_strategy(cfg.strategy, **cfg.strategy_kwargs()).run(ctx)
        index = space.index_of(result.arch)
        test: dict[str, float] | None = None
        percentile: float | None = None
        if truth is not None:
            test = {ds: float(truth.accuracy(ds, "test").loc[index]) for ds in DATASETS}
            percentile = truth.percentile(test[dataset], dataset)
        return {"strategy": cfg.strategy, "arch": result.arch, "index": index,
                "score": result.score, "accuracy": result.accuracy, "eval": cfg.eval,
                "test_acc": test, "percentile": percentile,
                "scored": result.scored, "evaluated": result.evaluated,
                "data": scorer.source.identity, "data_description": scorer.source.description,
                "seconds": time.perf_counter() - start, "trace": result.trace}

    def _evaluator(self, truth: GroundTruth | None, space: SearchSpace) -> Callable[[str], float]:
        cfg = self.config
        if cfg.eval == "lookup":
            if truth is None:  # refused by the config; a space may have been registered since
                raise ValueError(f"eval: look-up needs a benchmark table; space {space.name!r} has none")
            short = truth.accuracy(cfg.dataset, "valid_12ep")
            return lambda arch: float(short.loc[space.index_of(arch)])
        from knas_core.training import train_architecture

        train_config = cfg.train_config()

        def train(arch: str) -> float:
            return train_architecture(arch, cfg.dataset, train_config, space=space,
                                      model_options=cfg.model.as_dict(), data_source=cfg.data_source,
                                      data_dir=cfg.data_dir).final_test_acc

        return train
